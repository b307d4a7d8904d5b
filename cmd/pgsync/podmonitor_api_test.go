package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/pgsync/pgsync/test/kubeenv"
)

// TestAPIPlanPodMonitor: a cluster with enablePodMonitor, planned by the
// CLI. Offline, its objects step names the PodMonitor; live against an
// API server without the Prometheus Operator's CRD, the plan is refused
// at the field (exit 1); with the CRD installed, planned.
func TestAPIPlanPodMonitor(t *testing.T) {
	admin := kubeenv.APIServer(t)
	ns := kubeenv.Namespace(t, admin)
	kc := filepath.Join(t.TempDir(), "admin.kubeconfig")
	writeKubeconfig(t, kc, admin, &clientcmdapi.AuthInfo{ClientCertificateData: admin.CertData, ClientKeyData: admin.KeyData})
	repo := newGitRepo(t)
	repo.commit("web", map[string]string{"clusters/web.yaml": fmt.Sprintf(`apiVersion: postgresql.cnpg.io/v1
kind: Cluster
metadata: {name: web, namespace: %s}
spec:
  imageName: localhost:5000/postgresql:15.18
  instances: 1
  storage: {size: 1Gi}
  monitoring:
    enablePodMonitor: true
`, ns)})
	created := "NetworkPolicy web and StatefulSet web, and PodMonitor web"

	res := pgsync(t, "plan", "--repo", repo.dir, "--offline")
	if res.code != 0 || !strings.Contains(res.stdout, created) {
		t.Errorf("offline plan: exit %d\nstdout:\n%s\nstderr:\n%s", res.code, res.stdout, res.stderr)
	}

	res = pgsync(t, "plan", "--repo", repo.dir, "--kubeconfig", kc, "--namespace", ns)
	refusal := "clusters/web.yaml:9:23: spec.monitoring.enablePodMonitor: the API server has no PodMonitor kind (monitoring.coreos.com/v1): install the Prometheus Operator's CRDs or set enablePodMonitor: false"
	if res.code != 1 || !strings.Contains(res.stderr, refusal) {
		t.Errorf("live plan without the CRD: exit %d, want 1 and %q\nstdout:\n%s\nstderr:\n%s", res.code, refusal, res.stdout, res.stderr)
	}

	kubeenv.InstallCRD(t, admin, "../../test/kubeenv/testdata/podmonitor-crd.yaml")
	res = pgsync(t, "plan", "--repo", repo.dir, "--kubeconfig", kc, "--namespace", ns)
	if res.code != 0 || !strings.Contains(res.stdout, created) {
		t.Errorf("live plan with the CRD: exit %d\nstdout:\n%s\nstderr:\n%s", res.code, res.stdout, res.stderr)
	}
}
