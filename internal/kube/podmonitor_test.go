package kube

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const podMonitorYAML = `  monitoring:
    enablePodMonitor: true
    podMonitorRelabelings:
    - {sourceLabels: [__meta_kubernetes_pod_node_name], targetLabel: node}
    podMonitorMetricRelabelings:
    - {sourceLabels: [__name__], separator: ';', regex: 'go_.*', replacement: '$1', action: drop}
    - {sourceLabels: [a], targetLabel: shard, modulus: 8, action: HashMod}
`

// TestRenderPodMonitor: the PodMonitor of enablePodMonitor, field by
// field, last in apply order; without it, none, and the objects and the
// applied spec of a cluster with spec.monitoring are as before.
func TestRenderPodMonitor(t *testing.T) {
	o := render(t, loadCluster(t, func(y string) string { return y + podMonitorYAML }))
	pm := o.PodMonitor
	if pm == nil {
		t.Fatal("no PodMonitor")
	}
	list := o.List()
	if list[len(list)-1] != pm {
		t.Error("the PodMonitor is not last in apply order")
	}
	body, err := ApplyBody(pm)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(body.Object)
	want := `{"apiVersion":"monitoring.coreos.com/v1","kind":"PodMonitor",` +
		`"metadata":{"labels":{"app.kubernetes.io/managed-by":"pgsync","pgsync.io/cluster":"web"},"name":"web","namespace":"shop"},` +
		`"spec":{"podMetricsEndpoints":[{` +
		`"metricRelabelings":[{"action":"drop","regex":"go_.*","replacement":"$1","separator":";","sourceLabels":["__name__"]},{"action":"HashMod","modulus":8,"sourceLabels":["a"],"targetLabel":"shard"}],` +
		`"port":"metrics",` +
		`"relabelings":[{"sourceLabels":["__meta_kubernetes_pod_node_name"],"targetLabel":"node"}]}],` +
		`"selector":{"matchLabels":{"pgsync.io/cluster":"web"}}}}`
	if string(raw) != want {
		t.Errorf("PodMonitor\n%s\nwant\n%s", raw, want)
	}
	gvr, err := ResourceOf(body.GroupVersionKind())
	if err != nil || gvr != PodMonitorResource || gvr.Resource != "podmonitors" {
		t.Errorf("resource %v, %v", gvr, err)
	}
	for _, r := range Resources() {
		if r == PodMonitorResource {
			t.Error("podmonitors among Resources: every cluster's drift and the daemon's watches would read a kind most API servers do not serve")
		}
	}

	for _, edit := range []func(string) string{nil, func(y string) string { return y + "  monitoring: {enablePodMonitor: false}\n" }} {
		c := loadCluster(t, edit)
		o := render(t, c)
		if o.PodMonitor != nil {
			t.Error("a PodMonitor without enablePodMonitor")
		}
		if got := o.List()[len(o.List())-1]; got != o.StatefulSet {
			t.Errorf("last object %T, want the StatefulSet", got)
		}
		applied, err := AppliedSpec(c)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(applied, "Relabelings") {
			t.Errorf("the applied spec names the relabelings: %s", applied)
		}
	}
}

// TestRenderPodMonitorTLS: with monitoring.tls the PodMonitor scrapes
// over HTTPS, verifying with the server CA (pgsync's NAME-ca, or the
// user's serverCASecret) and the name NAME-rw.NS.svc.
func TestRenderPodMonitorTLS(t *testing.T) {
	tls := "  monitoring:\n    enablePodMonitor: true\n    tls: {enabled: true}\n"
	for _, tc := range []struct{ name, yaml, ca string }{
		{"pgsync's CA", tls, `{"configMap":{"key":"ca.crt","name":"web-ca"}}`},
		{"the user's CA", tls + "  certificates: {serverCASecret: my-ca}\n", `{"secret":{"key":"ca.crt","name":"my-ca"}}`},
	} {
		o := render(t, loadCluster(t, func(y string) string { return y + tc.yaml }))
		raw, _ := json.Marshal(o.PodMonitor.Object["spec"])
		want := `{"podMetricsEndpoints":[{"port":"metrics","scheme":"https","tlsConfig":{"ca":` + tc.ca + `,"serverName":"web-rw.shop.svc"}}],"selector":{"matchLabels":{"pgsync.io/cluster":"web"}}}`
		if string(raw) != want {
			t.Errorf("%s: PodMonitor spec\n%s\nwant\n%s", tc.name, raw, want)
		}
	}
}

// TestPodMonitorRelabelingsRoundTrip: what the applied spec records reads
// back to the same PodMonitor (observe re-renders it for drift).
func TestPodMonitorRelabelingsRoundTrip(t *testing.T) {
	c := loadCluster(t, func(y string) string { return y + podMonitorYAML })
	o := render(t, c)
	sts := o.StatefulSet.DeepCopy()
	back, ok, err := ReadAppliedSpec(sts)
	if !ok || err != nil {
		t.Fatal(ok, err)
	}
	again := render(t, back)
	if !cmp.Equal(o.PodMonitor.Object, again.PodMonitor.Object) {
		t.Error(cmp.Diff(o.PodMonitor.Object, again.PodMonitor.Object))
	}
}
