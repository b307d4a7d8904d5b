package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// Image references served by the loopback registry (see images.go).
const (
	pauseImage = registryHost + "/pause:3.10"
)

// writeConfigs renders every component's configuration file for nodeIP.
func writeConfigs(p paths, nodeIP string) error {
	files := map[string]string{
		p.conf("containerd.toml"):                           containerdConfig(p),
		p.conf("certs.d/" + registryHost + "/hosts.toml"):   registryHostsConfig(),
		filepath.Join(p.cniConfDir(), "10-pgsync.conflist"): cniConfig(p),
		p.conf("kubelet.yaml"):                              kubeletConfig(p, nodeIP),
		p.conf("kube-proxy.yaml"):                           kubeProxyConfig(p, nodeIP),
		p.conf("Corefile"):                                  corefile(p, podGateway),
		p.conf("resolv.conf"):                               "# pods use cluster DNS (" + dnsServiceIP + "); the host's resolvers are not handed to them\n",
	}
	for name, text := range files {
		if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
			return fmt.Errorf("create %s: %w", filepath.Dir(name), err)
		}
		if err := os.WriteFile(name, []byte(text), 0o644); err != nil {
			return fmt.Errorf("write %s: %w", name, err)
		}
	}
	return nil
}

func containerdConfig(p paths) string {
	return fmt.Sprintf(`version = 2
root = %q
state = %q
disabled_plugins = ["io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.aufs", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = %q

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %q
  # The VM withholds CAP_SYS_RESOURCE: without this runc fails writing
  # oom_score_adj ("can't get final child's PID from pipe: EOF").
  restrict_oom_score_adj = true
  enable_selinux = false
  stream_server_address = "127.0.0.1"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = %q
    conf_dir = %q
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = %q
`, p.containerdRoot(), p.containerdState(), p.containerdSock(), pauseImage,
		cniBinDir, p.cniConfDir(), p.conf("certs.d"))
}

// registryHostsConfig sends pulls of localhost:5000/... to the loopback
// registry over plain HTTP.
func registryHostsConfig() string {
	return fmt.Sprintf(`server = "http://%[1]s"

[host."http://%[1]s"]
  capabilities = ["pull", "resolve"]
`, registryAddr)
}

// cniConfig puts pods on the pgsync0 bridge in podCIDR. No masquerade: pods
// talk to pods, Services and the node only, and the PGSYNC-GUARD chain drops
// anything a pod sends elsewhere.
func cniConfig(p paths) string {
	return fmt.Sprintf(`{
  "cniVersion": "0.4.0",
  "name": %q,
  "plugins": [
    {
      "type": "bridge",
      "bridge": %q,
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {
        "type": "host-local",
        "ranges": [[{"subnet": %q, "gateway": %q}]],
        "routes": [{"dst": "0.0.0.0/0"}],
        "dataDir": %q
      }
    },
    {"type": "portmap", "capabilities": {"portMappings": true}}
  ]
}
`, cniNetwork, bridgeName, podCIDR, podGateway, p.cniDataDir())
}

func kubeletConfig(p paths, nodeIP string) string {
	return fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: %q
port: 10250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 10248
tlsCertFile: %q
tlsPrivateKeyFile: %q
authentication:
  anonymous:
    enabled: false
  webhook:
    enabled: true
  x509:
    clientCAFile: %q
authorization:
  mode: Webhook
containerRuntimeEndpoint: unix://%s
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
clusterDNS: [%q]
clusterDomain: %s
resolvConf: %q
rotateCertificates: false
serializeImagePulls: false
evictionHard:
  memory.available: 100Mi
  nodefs.available: 1%%
  nodefs.inodesFree: 1%%
  imagefs.available: 1%%
imageGCHighThresholdPercent: 99
imageGCLowThresholdPercent: 98
maxPods: 60
`, nodeIP, p.pki("kubelet-serving.crt"), p.pki("kubelet-serving.key"), p.pki("ca.crt"),
		p.containerdSock(), dnsServiceIP, clusterDomain, p.conf("resolv.conf"))
}

func kubeProxyConfig(p paths, nodeIP string) string {
	return fmt.Sprintf(`apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection:
  kubeconfig: %q
mode: iptables
clusterCIDR: %q
hostnameOverride: %q
bindAddress: %q
healthzBindAddress: 127.0.0.1:10256
metricsBindAddress: 127.0.0.1:10249
nodePortAddresses: ["%s/32"]
conntrack:
  maxPerCore: 0
  min: 0
iptables:
  localhostNodePorts: false
  minSyncPeriod: 1s
  syncPeriod: 30s
`, p.conf("kube-proxy.kubeconfig"), podSupernet, nodeName, nodeIP, nodeIP)
}

// corefile serves cluster.local only, on addr (the bridge address kube-up
// creates); with no forward plugin no query ever leaves the machine.
func corefile(p paths, addr string) string {
	return fmt.Sprintf(`.:53 {
    bind %s
    errors
    ready 127.0.0.1:18181
    kubernetes %s in-addr.arpa ip6.arpa {
        kubeconfig %s pgsync-local
        pods insecure
        fallthrough in-addr.arpa ip6.arpa
    }
    cache 5
}
`, addr, clusterDomain, p.conf("coredns.kubeconfig"))
}

// component is one host process of the cluster, in start order.
type component struct {
	name string
	bin  string
	args []string
	env  []string // added to kubelocal's environment
}

func components(p paths, nodeIP string) []component {
	kc := func(n string) string { return p.conf(n + ".kubeconfig") }
	return []component{
		{name: "etcd", bin: "etcd", args: []string{
			"--name=pgsync-node",
			"--data-dir=" + p.etcdData(),
			"--listen-client-urls=" + etcdClientURL,
			"--advertise-client-urls=" + etcdClientURL,
			"--listen-peer-urls=" + etcdPeerURL,
			"--initial-advertise-peer-urls=" + etcdPeerURL,
			"--initial-cluster=pgsync-node=" + etcdPeerURL,
			"--initial-cluster-state=new",
		}},
		{name: "kube-apiserver", bin: p.kubeBin("kube-apiserver"), args: []string{
			// Pods reach the API through the kubernetes Service, whose
			// endpoint is the advertise address: it must be one pods can
			// reach (not loopback), and it is the bridge address kube-up
			// creates, so the API server listens on no real interface.
			"--advertise-address=" + nodeIP,
			"--bind-address=" + nodeIP,
			"--secure-port=" + strconv.Itoa(apiPort),
			"--etcd-servers=" + etcdClientURL,
			"--cert-dir=" + p.pki("apiserver-generated"),
			"--tls-cert-file=" + p.pki("apiserver.crt"),
			"--tls-private-key-file=" + p.pki("apiserver.key"),
			"--client-ca-file=" + p.pki("ca.crt"),
			"--kubelet-client-certificate=" + p.pki("apiserver-kubelet-client.crt"),
			"--kubelet-client-key=" + p.pki("apiserver-kubelet-client.key"),
			"--kubelet-certificate-authority=" + p.pki("ca.crt"),
			"--kubelet-preferred-address-types=InternalIP",
			"--service-account-issuer=https://kubernetes.default.svc." + clusterDomain,
			"--service-account-key-file=" + p.pki("sa.pub"),
			"--service-account-signing-key-file=" + p.pki("sa.key"),
			"--service-cluster-ip-range=" + serviceCIDR,
			"--authorization-mode=Node,RBAC",
			"--enable-admission-plugins=NodeRestriction",
			"--allow-privileged=true",
			"--profiling=false",
		}},
		{name: "kube-controller-manager", bin: p.kubeBin("kube-controller-manager"), args: []string{
			"--kubeconfig=" + kc("controller-manager"),
			"--authentication-kubeconfig=" + kc("controller-manager"),
			"--authorization-kubeconfig=" + kc("controller-manager"),
			"--bind-address=127.0.0.1",
			"--cert-dir=" + p.pki("controller-manager-generated"),
			"--leader-elect=false",
			"--use-service-account-credentials=true",
			"--service-account-private-key-file=" + p.pki("sa.key"),
			"--root-ca-file=" + p.pki("ca.crt"),
			"--cluster-signing-cert-file=" + p.pki("ca.crt"),
			"--cluster-signing-key-file=" + p.pki("ca.key"),
			"--service-cluster-ip-range=" + serviceCIDR,
			"--allocate-node-cidrs=false",
			"--profiling=false",
		}},
		{name: "kube-scheduler", bin: p.kubeBin("kube-scheduler"), args: []string{
			"--kubeconfig=" + kc("scheduler"),
			"--authentication-kubeconfig=" + kc("scheduler"),
			"--authorization-kubeconfig=" + kc("scheduler"),
			"--bind-address=127.0.0.1",
			"--cert-dir=" + p.pki("scheduler-generated"),
			"--leader-elect=false",
			"--profiling=false",
		}},
		{name: "containerd", bin: "containerd", args: []string{
			"--config=" + p.conf("containerd.toml"),
		}},
		{name: "kubelet", bin: p.kubeBin("kubelet"), args: []string{
			"--config=" + p.conf("kubelet.yaml"),
			"--kubeconfig=" + kc("kubelet"),
			"--root-dir=" + p.kubeletDir(),
			"--hostname-override=" + nodeName,
			"--node-ip=" + nodeIP,
		}},
		{name: "kube-proxy", bin: p.kubeBin("kube-proxy"), args: []string{
			"--config=" + p.conf("kube-proxy.yaml"),
		}},
		{name: "coredns", bin: p.corednsBin(), args: []string{
			"-conf=" + p.conf("Corefile"),
		}},
		// NetworkPolicy enforcement, which the bridge CNI has none of:
		// new connections of the pods that a policy selects go through
		// nfqueue to the agent, which drops what no policy admits.
		// --fail-open: while it is not running, packets pass (a crashed
		// agent must not cut the node off; the e2e tier's check that a
		// port is closed notices an agent that enforces nothing). NRI is
		// off: containerd 1.6 has none, and the agent learns pod IPs
		// from the API server. Traffic the node's root processes start
		// (the kubelet's probes, kube-apiserver's pod proxy, the tests
		// run on the node) is never filtered (its meta skuid 0 rule).
		{name: "kube-network-policies", bin: p.networkPoliciesBin(), args: []string{
			"--fail-open",
			"--disable-nri",
			"--hostname-override=" + nodeName,
			"--metrics-bind-address=127.0.0.1:" + networkPoliciesMetricsPort,
		}, env: []string{"KUBECONFIG=" + kc("kube-network-policies")}},
	}
}
