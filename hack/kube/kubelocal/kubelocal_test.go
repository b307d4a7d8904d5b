package main

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/yaml"
)

func TestSplitRule(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{`-A FORWARD -j KUBE-FORWARD`, []string{"-A", "FORWARD", "-j", "KUBE-FORWARD"}},
		{`-A FORWARD -m comment --comment "kubernetes forwarding rules" -j KUBE-FORWARD`,
			[]string{"-A", "FORWARD", "-m", "comment", "--comment", "kubernetes forwarding rules", "-j", "KUBE-FORWARD"}},
		{`-A X -m comment --comment "a \"quoted\" word" -j DROP`,
			[]string{"-A", "X", "-m", "comment", "--comment", `a "quoted" word`, "-j", "DROP"}},
		{`-A X --comment "" -j DROP`, []string{"-A", "X", "--comment", "", "-j", "DROP"}},
	} {
		if diff := cmp.Diff(tc.want, splitRule(tc.in)); diff != "" {
			t.Errorf("splitRule(%q) (-want +got):\n%s", tc.in, diff)
		}
	}
}

func TestUnescapeMount(t *testing.T) {
	if got := unescapeMount(`/var/lib/a\040b`); got != "/var/lib/a b" {
		t.Errorf("got %q", got)
	}
	if got := unescapeMount(`/plain`); got != "/plain" {
		t.Errorf("got %q", got)
	}
}

func TestOwnedChain(t *testing.T) {
	for name, want := range map[string]bool{
		"KUBE-SERVICES": true, "CNI-abc": true, guardChain: true,
		"FORWARD": false, "DOCKER": false, "KUBERNETES": false,
	} {
		if got := ownedChain(name); got != want {
			t.Errorf("ownedChain(%q) = %v, want %v", name, got, want)
		}
	}
}

// The rendered configurations must be valid YAML/JSON carrying the network
// layout of docs/local-kubernetes.md; the node IP is whatever was discovered.
func TestConfigsCarryTheNetworkLayout(t *testing.T) {
	p := paths{cache: "/c", state: "/s", run: "/r", versions: map[string]string{"KUBE_VERSION": "v1", "COREDNS_VERSION": "v2"}}
	const ip = "192.0.2.7"
	for name, text := range map[string]string{
		"kubelet": kubeletConfig(p, ip), "kube-proxy": kubeProxyConfig(p, ip), "cni": cniConfig(p),
	} {
		var m map[string]any
		if err := yaml.Unmarshal([]byte(text), &m); err != nil {
			t.Fatalf("%s config does not parse: %v\n%s", name, err, text)
		}
	}
	for _, tc := range []struct{ text, want string }{
		{kubeletConfig(p, ip), `clusterDNS: ["198.19.0.10"]`},
		{kubeletConfig(p, ip), `failCgroupV1: false`},
		{kubeletConfig(p, ip), `address: "` + ip + `"`},
		{kubeProxyConfig(p, ip), `bindAddress: "` + ip + `"`},
		{kubeProxyConfig(p, ip), `clusterCIDR: "198.18.0.0/16"`},
		{cniConfig(p), `"subnet": "198.18.0.0/24"`},
		{cniConfig(p), `"ipMasq": false`},
		{containerdConfig(p), `restrict_oom_score_adj = true`},
		{corefile(p, podGateway), "bind " + podGateway},
	} {
		if !strings.Contains(tc.text, tc.want) {
			t.Errorf("config lacks %q:\n%s", tc.want, tc.text)
		}
	}
	if strings.Contains(corefile(p, podGateway), "forward") {
		t.Error("the Corefile forwards queries: they could leave the machine")
	}
	args := map[string][]string{}
	for _, c := range components(p, ip) {
		args[c.name] = c.args
	}
	for _, want := range []string{"--service-cluster-ip-range=198.19.0.0/16", "--authorization-mode=Node,RBAC", "--advertise-address=" + ip, "--bind-address=" + ip} {
		if !contains(args["kube-apiserver"], want) {
			t.Errorf("kube-apiserver lacks %s", want)
		}
	}
}

func contains(xs []string, x string) bool {
	for _, y := range xs {
		if y == x {
			return true
		}
	}
	return false
}
