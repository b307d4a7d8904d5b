package kube

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	pc "github.com/pgsync/pgsync/internal/podcontract"
)

// TestPodTLS: the postgres container gets the cluster's CA as a Secret
// volume readable by its group only (the kubelet brings a new CA into a
// running pod), the variable naming it, serverAltDNSNames when set; the
// replication password is projected only if its Secret exists (a cluster
// created before TLS).
func TestPodTLS(t *testing.T) {
	spec := render(t, loadCluster(t, nil)).StatefulSet.Spec.Template.Spec
	ct := spec.Containers[0]
	env := map[string]string{}
	for _, e := range ct.Env {
		env[e.Name] = e.Value
	}
	if env[pc.EnvCADir] != pc.CADir {
		t.Errorf("%s = %q, want %s", pc.EnvCADir, env[pc.EnvCADir], pc.CADir)
	}
	if _, ok := env[pc.EnvServerAltDNSNames]; ok {
		t.Errorf("%s rendered without serverAltDNSNames", pc.EnvServerAltDNSNames)
	}
	var mounted bool
	for _, m := range ct.VolumeMounts {
		if m.MountPath == pc.CADir {
			mounted = m.ReadOnly && m.Name == volCA
		}
	}
	if !mounted {
		t.Errorf("the CA is not mounted read-only at %s", pc.CADir)
	}
	var ca *corev1.ProjectedVolumeSource
	for _, v := range spec.Volumes {
		if v.Name == volCA {
			ca = v.Projected
		}
		if v.Name == volCredentials {
			for _, p := range v.Projected.Sources {
				if p.Secret.Name == "web-replication" && (p.Secret.Optional == nil || !*p.Secret.Optional) {
					t.Error("the replication password's projection is not optional: a new cluster has no web-replication")
				}
			}
		}
	}
	if ca == nil || ca.DefaultMode == nil || *ca.DefaultMode != 0o440 || len(ca.Sources) != pc.CAGenerations {
		t.Fatalf("CA volume %+v: want a projection of the %d generations, mode 0440", ca, pc.CAGenerations)
	}
	var sources []string
	for _, p := range ca.Sources {
		line := p.Secret.Name
		if p.Secret.Optional != nil && *p.Secret.Optional {
			line += " (optional)"
		}
		for _, it := range p.Secret.Items {
			line += " " + it.Key + "→" + it.Path
		}
		sources = append(sources, line)
	}
	want := []string{"web-ca ca.crt→ca.crt ca.key→ca.key",
		"web-ca-2 (optional) ca.crt→gen2/ca.crt ca.key→gen2/ca.key",
		"web-ca-3 (optional) ca.crt→gen3/ca.crt ca.key→gen3/ca.key",
		"web-ca-4 (optional) ca.crt→gen4/ca.crt ca.key→gen4/ca.key"}
	if strings.Join(sources, "\n") != strings.Join(want, "\n") {
		t.Errorf("CA volume sources:\n%s\nwant:\n%s", strings.Join(sources, "\n"), strings.Join(want, "\n"))
	}
	generations := ""
	for _, e := range ct.Env {
		if e.Name == pc.EnvCAGenerations {
			generations = e.Value
		}
	}
	if generations != "4" {
		t.Errorf("%s = %q, want 4", pc.EnvCAGenerations, generations)
	}

	alt := loadCluster(t, func(y string) string {
		return strings.Replace(y, "  instances: 3\n", "  instances: 3\n  certificates:\n    serverAltDNSNames: [db.example.com, \"*.db.example.com\"]\n", 1)
	})
	got := ""
	for _, e := range render(t, alt).StatefulSet.Spec.Template.Spec.Containers[0].Env {
		if e.Name == pc.EnvServerAltDNSNames {
			got = e.Value
		}
	}
	if got != "db.example.com,*.db.example.com" {
		t.Errorf("%s = %q", pc.EnvServerAltDNSNames, got)
	}
	if got := pc.SplitNames("db.example.com,*.db.example.com"); len(got) != 2 || got[1] != "*.db.example.com" {
		t.Errorf("SplitNames: %q", got)
	}
}
