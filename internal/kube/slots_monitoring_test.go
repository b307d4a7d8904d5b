package kube

import (
	"slices"
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	"github.com/pgsync/pgsync/internal/cluster"
	pc "github.com/pgsync/pgsync/internal/podcontract"
)

func loadDoc(t *testing.T, extra string) *cluster.Cluster {
	t.Helper()
	y := "apiVersion: postgresql.cnpg.io/v1\nkind: Cluster\nmetadata:\n  name: pg\n  namespace: x\nspec:\n  imageName: ghcr.io/cloudnative-pg/postgresql:16.4\n  instances: 3\n  storage:\n    size: 1Gi\n" + extra
	set, err := cluster.Load([]cluster.File{{Path: "c.yaml", Data: []byte(y)}})
	if err != nil {
		t.Fatal(err)
	}
	return set.Clusters[0]
}

// TestReplicationKeySlots: spec.replicationSlots reaches the managers in
// replication.json, its defaults filled in; without it the key is as
// before (the managers apply CloudNativePG's defaults), so a pgsync
// upgrade rewrites no ConfigMap.
func TestReplicationKeySlots(t *testing.T) {
	for _, tc := range []struct{ name, extra, want string }{
		{"not written: as before", "", `{"instances":["pg-0","pg-1","pg-2"]}`},
		{"HA off", "  replicationSlots:\n    highAvailability:\n      enabled: false\n",
			`{"instances":["pg-0","pg-1","pg-2"],"slots":{"highAvailability":false,"slotPrefix":"_cnpg_","updateInterval":30,"synchronizeReplicas":true}}`},
		{"everything", "  replicationSlots:\n    highAvailability: {slotPrefix: _ha_}\n    updateInterval: 5\n    synchronizeReplicas: {enabled: true, excludePatterns: [\"^tmp\"]}\n",
			`{"instances":["pg-0","pg-1","pg-2"],"slots":{"highAvailability":true,"slotPrefix":"_ha_","updateInterval":5,"synchronizeReplicas":true,"excludePatterns":["^tmp"]}}`},
	} {
		cm, err := paramsConfigMap(loadDoc(t, tc.extra))
		if err != nil {
			t.Fatal(err)
		}
		if got := cm.Data[pc.ReplicationKey]; got != tc.want {
			t.Errorf("%s: %s\nwant %s", tc.name, got, tc.want)
		}
	}
}

// TestRenderMonitoring: spec.monitoring adds the metrics port and the
// manager's --metrics-addr (and turns the default queries off when asked);
// without it the container is as before.
func TestRenderMonitoring(t *testing.T) {
	container := func(extra string) corev1.Container {
		return render(t, loadDoc(t, extra)).StatefulSet.Spec.Template.Spec.Containers[0]
	}
	hasPort := func(c corev1.Container) bool {
		return slices.ContainsFunc(c.Ports, func(p corev1.ContainerPort) bool {
			return p.Name == pc.PortNameMetrics && p.ContainerPort == 9187 && p.Protocol == corev1.ProtocolTCP
		})
	}
	args := func(c corev1.Container) string { return strings.Join(c.Args, " ") }
	off := container("")
	if hasPort(off) || strings.Contains(args(off), "metrics") {
		t.Errorf("without monitoring: ports %v, args %s", off.Ports, args(off))
	}
	on := container("  monitoring: {}\n")
	if !hasPort(on) || !strings.Contains(args(on), "--metrics-addr=:9187") || strings.Contains(args(on), "default-queries") {
		t.Errorf("monitoring: {}: ports %v, args %s", on.Ports, args(on))
	}
	bare := container("  monitoring:\n    disableDefaultQueries: true\n")
	if !hasPort(bare) || !strings.Contains(args(bare), "--metrics-addr=:9187 --metrics-default-queries=false") {
		t.Errorf("disableDefaultQueries: ports %v, args %s", bare.Ports, args(bare))
	}
}
