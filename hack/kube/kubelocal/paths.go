package main

import (
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/pgsync/pgsync/hack/kube/kubelayout"
)

// Fixed addresses of the cluster (see docs/local-kubernetes.md, "Network").
const (
	nodeName      = "pgsync-node"
	podCIDR       = "198.18.0.0/24" // on the bridge; the rest of the /16 is a blackhole
	podSupernet   = "198.18.0.0/16"
	podGateway    = "198.18.0.1"
	guardRange    = "198.18.0.0/15" // pods and Services: the only destinations pods may be forwarded to
	serviceCIDR   = "198.19.0.0/16" // routed to the ifb sink
	kubernetesSvc = "198.19.0.1"
	dnsServiceIP  = "198.19.0.10"
	bridgeName    = "pgsync0"
	sinkName      = "pgsync-sink"
	cniNetwork    = "pgsync"
	guardChain    = "PGSYNC-GUARD"
	clusterDomain = "cluster.local"

	// networkPoliciesMetricsPort: the NetworkPolicy agent's metrics, on
	// loopback (its default :9080 would listen on every interface).
	networkPoliciesMetricsPort = "19080"

	etcdClientURL = "http://127.0.0.1:23790"
	etcdPeerURL   = "http://127.0.0.1:23800"
	apiPort       = 6443
	registryAddr  = "127.0.0.1:5000"
	registryHost  = "localhost:5000"
)

// paths are the directories kubelocal uses: the build cache (kept, keyed by
// version), the state of one cluster run (wiped by down, except containerd's
// image store) and the checkout it was started from.
type paths struct {
	repo     string
	cache    string
	state    string
	run      string
	versions map[string]string
}

func defaultPaths() (paths, error) {
	p := paths{cache: kubelayout.CacheDir(), state: kubelayout.StateDir(), run: kubelayout.RunDir()}
	repo, err := kubelayout.Root()
	if err != nil {
		return p, err
	}
	p.repo = repo
	p.versions, err = kubelayout.Versions(repo)
	return p, err
}

func (p paths) kubeBin(name string) string {
	return kubelayout.KubeBin(p.cache, p.versions["KUBE_VERSION"], name)
}
func (p paths) corednsBin() string {
	return kubelayout.CoreDNSBin(p.cache, p.versions["COREDNS_VERSION"])
}
func (p paths) networkPoliciesBin() string {
	return kubelayout.NetworkPoliciesBin(p.cache, p.versions["KNP_VERSION"])
}
func (p paths) imagesDir() string       { return filepath.Join(p.cache, "images") }
func (p paths) layoutDir() string       { return kubelayout.LayoutDir(p.cache) }
func (p paths) kubeconfig() string      { return kubelayout.Kubeconfig(p.state) }
func (p paths) pki(f string) string     { return filepath.Join(p.state, "pki", f) }
func (p paths) conf(f string) string    { return filepath.Join(p.state, "conf", f) }
func (p paths) logFile(n string) string { return filepath.Join(p.state, "logs", n+".log") }
func (p paths) pidFile(n string) string { return filepath.Join(p.run, n+".pid") }
func (p paths) etcdData() string        { return filepath.Join(p.state, "etcd") }
func (p paths) kubeletDir() string      { return filepath.Join(p.state, "kubelet") }
func (p paths) volumesDir() string      { return filepath.Join(p.state, "volumes") }
func (p paths) containerdRoot() string  { return filepath.Join(p.cache, "containerd") }
func (p paths) containerdState() string { return filepath.Join(p.run, "containerd") }
func (p paths) containerdSock() string  { return filepath.Join(p.run, kubelayout.ContainerdSocket) }
func (p paths) cniConfDir() string      { return filepath.Join(p.state, "cni", "net.d") }
func (p paths) cniDataDir() string      { return filepath.Join(p.state, "cni", "ipam") }
func (p paths) readyFile() string       { return filepath.Join(p.run, "ready") }
func (p paths) nodeIPFile() string      { return filepath.Join(p.run, "node-ip") }

// cniBinDir is where Debian's containernetworking-plugins installs.
const cniBinDir = "/usr/lib/cni"

// discoverNodeIP returns the address the kernel would use as source on the
// default route (a route lookup: no packet is sent), or else the first global
// IPv4 address. It is never hard-coded: it differs between machines.
func discoverNodeIP() (string, error) {
	out, err := exec.Command("ip", "-4", "route", "get", "192.0.2.1").Output()
	if err == nil {
		f := strings.Fields(string(out))
		for i := 0; i+1 < len(f); i++ {
			if f[i] == "src" {
				return f[i+1], nil
			}
		}
	}
	out, err = exec.Command("ip", "-4", "-o", "addr", "show", "scope", "global").Output()
	if err != nil {
		return "", fmt.Errorf("list addresses: %w", err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		for i := 0; i+1 < len(f); i++ {
			if f[i] == "inet" {
				ip, _, _ := strings.Cut(f[i+1], "/")
				if !strings.HasPrefix(ip, "198.18.") {
					return ip, nil
				}
			}
		}
	}
	return "", errors.New("no global IPv4 address to use as the node IP")
}
