package kube

import (
	"testing"

	pc "github.com/pgsync/pgsync/internal/podcontract"
)

// TestPodAPIToken: no automounted ServiceAccount token; the postgres
// container alone mounts a projected one of TokenExpirationSeconds where
// client-go's in-cluster configuration reads it, with the API server's CA
// and the namespace; the init container has none.
func TestPodAPIToken(t *testing.T) {
	spec := render(t, loadCluster(t, nil)).StatefulSet.Spec.Template.Spec
	if spec.AutomountServiceAccountToken == nil || *spec.AutomountServiceAccountToken {
		t.Errorf("automountServiceAccountToken = %v, want false", spec.AutomountServiceAccountToken)
	}
	mounts := func(name string) (n int) {
		for _, c := range append(spec.InitContainers, spec.Containers...) {
			for _, m := range c.VolumeMounts {
				if m.Name == volAPIToken {
					n++
					if c.Name != name || m.MountPath != pc.ServiceAccountDir || !m.ReadOnly {
						t.Errorf("container %s mounts the token at %s (read-only %v), want only %s at %s read-only",
							c.Name, m.MountPath, m.ReadOnly, name, pc.ServiceAccountDir)
					}
				}
			}
		}
		return n
	}
	if n := mounts(pc.ContainerPostgres); n != 1 {
		t.Errorf("the token is mounted %d times, want once (postgres)", n)
	}
	var paths []string
	for _, v := range spec.Volumes {
		if v.Name != volAPIToken || v.Projected == nil {
			continue
		}
		for _, s := range v.Projected.Sources {
			switch {
			case s.ServiceAccountToken != nil:
				if e := s.ServiceAccountToken.ExpirationSeconds; e == nil || *e != pc.TokenExpirationSeconds {
					t.Errorf("token expirationSeconds = %v, want %d", e, pc.TokenExpirationSeconds)
				}
				paths = append(paths, s.ServiceAccountToken.Path)
			case s.ConfigMap != nil && s.ConfigMap.Name == "kube-root-ca.crt":
				paths = append(paths, s.ConfigMap.Items[0].Path)
			case s.DownwardAPI != nil:
				paths = append(paths, s.DownwardAPI.Items[0].Path)
			}
		}
	}
	if len(paths) != 3 || paths[0] != "token" || paths[1] != "ca.crt" || paths[2] != "namespace" {
		t.Errorf("projected files %v, want token, ca.crt, namespace", paths)
	}
}
