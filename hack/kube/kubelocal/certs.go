package main

import (
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/pgsync/pgsync/hack/kube/pki"
)

// identity is one client certificate and the kubeconfig that uses it.
type identity struct {
	file   string // base name of cert, key and kubeconfig
	cn     string
	groups []string
}

var identities = []identity{
	{file: "admin", cn: "kubelocal-admin", groups: []string{"system:masters"}},
	{file: "controller-manager", cn: "system:kube-controller-manager"},
	{file: "scheduler", cn: "system:kube-scheduler"},
	{file: "kubelet", cn: "system:node:" + nodeName, groups: []string{"system:nodes"}},
	{file: "kube-proxy", cn: "system:kube-proxy"},
	{file: "coredns", cn: "kubelocal:coredns"},
	{file: "kube-network-policies", cn: "kubelocal:kube-network-policies"},
	{file: "provisioner", cn: "kubelocal:provisioner"},
}

// writePKI creates the CA, the serving certificates, one client certificate
// and kubeconfig per component, and the service-account key, all fresh.
func writePKI(p paths, nodeIP string) error {
	now := time.Now()
	ca, err := pki.NewCA("pgsync-kubelocal-ca", now)
	if err != nil {
		return err
	}
	if err := ca.WriteCA(p.pki("ca.crt"), p.pki("ca.key")); err != nil {
		return err
	}
	ips := []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP(kubernetesSvc), net.ParseIP(nodeIP)}
	apiserver, err := ca.Issue(pki.Request{
		CommonName: "kube-apiserver",
		DNSNames:   []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc." + clusterDomain},
		IPs:        ips,
		Server:     true,
	}, now)
	if err != nil {
		return err
	}
	if err := apiserver.Write(p.pki("apiserver.crt"), p.pki("apiserver.key")); err != nil {
		return err
	}
	kubeletServing, err := ca.Issue(pki.Request{
		CommonName: nodeName, DNSNames: []string{nodeName, "localhost"},
		IPs: []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP(nodeIP)}, Server: true,
	}, now)
	if err != nil {
		return err
	}
	if err := kubeletServing.Write(p.pki("kubelet-serving.crt"), p.pki("kubelet-serving.key")); err != nil {
		return err
	}
	kc, err := ca.Issue(pki.Request{CommonName: "kube-apiserver-kubelet-client", Organization: []string{"system:masters"}, Client: true}, now)
	if err != nil {
		return err
	}
	if err := kc.Write(p.pki("apiserver-kubelet-client.crt"), p.pki("apiserver-kubelet-client.key")); err != nil {
		return err
	}
	if err := pki.WriteServiceAccountKey(p.pki("sa.key"), p.pki("sa.pub")); err != nil {
		return err
	}
	server := fmt.Sprintf("https://%s:%d", nodeIP, apiPort)
	for _, id := range identities {
		pair, err := ca.Issue(pki.Request{CommonName: id.cn, Organization: id.groups, Client: true}, now)
		if err != nil {
			return err
		}
		crt, key := p.pki(id.file+".crt"), p.pki(id.file+".key")
		if err := pair.Write(crt, key); err != nil {
			return err
		}
		if err := writeKubeconfig(p.conf(id.file+".kubeconfig"), server, ca.CertPEM, pair); err != nil {
			return err
		}
	}
	data, err := os.ReadFile(p.conf("admin.kubeconfig"))
	if err != nil {
		return err
	}
	return os.WriteFile(p.kubeconfig(), data, 0o600)
}

func writeKubeconfig(path, server string, caPEM []byte, pair pki.Pair) error {
	b64 := base64.StdEncoding.EncodeToString
	text := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: pgsync-local
  cluster:
    server: %s
    certificate-authority-data: %s
users:
- name: user
  user:
    client-certificate-data: %s
    client-key-data: %s
contexts:
- name: pgsync-local
  context:
    cluster: pgsync-local
    user: user
current-context: pgsync-local
`, server, b64(caPEM), b64(pair.CertPEM), b64(pair.KeyPEM))
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	return os.WriteFile(path, []byte(text), 0o600)
}
