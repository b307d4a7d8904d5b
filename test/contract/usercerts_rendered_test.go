package contract

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/pgsync/pgsync/internal/cluster"
	"github.com/pgsync/pgsync/internal/kube"
	pc "github.com/pgsync/pgsync/internal/podcontract"
	"github.com/pgsync/pgsync/internal/tlscert"
	"github.com/pgsync/pgsync/test/insttest"
	"github.com/pgsync/pgsync/test/kubeenv"
	"github.com/pgsync/pgsync/test/podrun"
	"github.com/pgsync/pgsync/test/prereq"
)

const userCertsSpec = `apiVersion: postgresql.cnpg.io/v1
kind: Cluster
metadata:
  name: uc
  namespace: %s
spec:
  instances: 1
  imageName: ghcr.io/cloudnative-pg/postgresql:15.8
  storage: {size: 1Gi}
  certificates:
    serverCASecret: uc-user-server-ca
    serverTLSSecret: uc-user-server
    clientCASecret: uc-user-client-ca
`

// TestRenderedPodUserCertificates: a rendered pod whose spec.certificates
// names Secrets of the user's (a server certificate with its CA, and a
// client CA with its key) mounts them as the kubelet would, and its
// manager serves the user's certificate — verify-full at the pod IP
// against the user's CA, not pgsync's published one — with no tlsProblem
// (the certificate names the advertised address by a wildcard).
func TestRenderedPodUserCertificates(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL and a kube-apiserver")
	}
	if why := podrun.Check(); why != "" {
		prereq.Missing(t, "%s", why)
	}
	ctx := context.Background()
	cfg := kubeenv.APIServer(t)
	ns := kubeenv.Namespace(t, cfg)
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	serverCA, err := tlscert.NewCA("user server CA", now, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	clientCA, err := tlscert.NewCA("user client CA", now, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := tlscert.Issue(serverCA, tlscert.Request{CommonName: "uc", DNSNames: []string{"*.uc-hl." + ns + ".svc", "uc-rw." + ns + ".svc"},
		IPs: []net.IP{net.ParseIP(podIP)}}, now, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []*corev1.Secret{
		{ObjectMeta: metav1.ObjectMeta{Name: "uc-user-server-ca"}, Data: map[string][]byte{pc.CACertKey: serverCA.CertPEM}},
		{ObjectMeta: metav1.ObjectMeta{Name: "uc-user-server"}, Type: corev1.SecretTypeTLS,
			Data: map[string][]byte{corev1.TLSCertKey: leaf.CertPEM, corev1.TLSPrivateKeyKey: leaf.KeyPEM}},
		{ObjectMeta: metav1.ObjectMeta{Name: "uc-user-client-ca"}, Data: map[string][]byte{pc.CACertKey: clientCA.CertPEM, pc.CAKeyKey: clientCA.KeyPEM}},
	} {
		if _, err := cs.CoreV1().Secrets(ns).Create(ctx, s, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	set, err := cluster.Load([]cluster.File{{Path: "uc.yaml", Data: fmt.Appendf(nil, userCertsSpec, ns)}})
	if err != nil {
		t.Fatal(err)
	}
	c := set.Clusters[0]
	objs, err := kube.Render(c, kube.Options{InstanceImage: instImage, TargetPrimary: kube.TargetPrimary(c, nil)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kube.EnsureSecrets(ctx, cs, c, rand.Reader, kube.SecretPolicy{}); err != nil {
		t.Fatal(err)
	}
	for _, o := range objs.List() {
		if _, err := kube.Apply(ctx, dyn, o, kube.ApplyOptions{Force: true}); err != nil {
			t.Fatal(err)
		}
	}
	pod, err := cs.CoreV1().Pods(ns).Create(ctx, podOf(objs.StatefulSet, 0), metav1.CreateOptions{})
	if err != nil {
		t.Fatalf("the rendered pod is not admitted: %v", err)
	}
	api, err := url.Parse(cfg.Host)
	if err != nil {
		t.Fatal(err)
	}
	apiCA := cfg.CAData
	if len(apiCA) == 0 {
		if apiCA, err = os.ReadFile(cfg.CAFile); err != nil {
			t.Fatal(err)
		}
	}
	dir, err := os.MkdirTemp("", "pgsync-contract-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	p, err := podrun.Start(ctx, pod, podrun.Options{
		Client: cs, APIServer: api.Host, ServiceIP: kubernetesServiceIP(t), CAData: apiCA, PodIP: podIP,
		Images: map[string]map[string]string{instImage: {pc.BootstrapBinary: insttest.Binary(t)}},
		Dir:    dir,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop()
	if err := p.RunInit(ctx, pc.ContainerBootstrap); err != nil {
		t.Fatal(err)
	}
	mgr, err := p.StartContainer(ctx, pc.ContainerPostgres)
	if err != nil {
		t.Fatal(err)
	}
	httpc := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DialContext: p.Dial}}
	var st pc.Status
	for deadline := time.Now().Add(2 * time.Minute); ; {
		st, err = status(httpc)
		if err == nil && st.Role == pc.StatusPrimary && st.Accepting {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no primary: %+v (%v)\n%s", st, err, tail(mgr.Log, 30))
		}
		select {
		case <-mgr.Done():
			t.Fatalf("the manager exited:\n%s", tail(mgr.Log, 30))
		case <-time.After(200 * time.Millisecond):
		}
	}
	if st.TLSProblem != "" {
		t.Errorf("tlsProblem %q", st.TLSProblem)
	}
	app, err := cs.CoreV1().Secrets(ns).Get(ctx, kube.NamesOf(c).AppSecret(), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	caMap, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, kube.NamesOf(c).CAConfigMap(), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{"user": serverCA.CertPEM, "published": []byte(caMap.Data[pc.CACertKey])}
	serial := func(which string) (string, error) {
		f := filepath.Join(dir, which+"-ca.crt")
		if err := os.WriteFile(f, files[which], 0o644); err != nil {
			return "", err
		}
		cc, err := pgx.ParseConfig(fmt.Sprintf("host=%s port=%d user=%s dbname=%s sslmode=verify-full sslrootcert=%s connect_timeout=5",
			podIP, pc.PostgresPort, pc.AppUser, pc.AppDatabase, f))
		if err != nil {
			return "", err
		}
		cc.Password = string(app.Data[corev1.BasicAuthPasswordKey])
		cc.DialFunc = p.Dial
		conn, err := pgx.ConnectConfig(ctx, cc)
		if err != nil {
			return "", err
		}
		defer conn.Close(ctx)
		return conn.PgConn().Conn().(*tls.Conn).ConnectionState().PeerCertificates[0].SerialNumber.String(), nil
	}
	want, _ := tlscert.ParseCert(leaf.CertPEM)
	// The primary accepts connections a moment before its manager has
	// created the application database (it does before routing -rw):
	// this test connects to the pod itself, so it waits for that.
	got, err := serial("user")
	for deadline := time.Now().Add(30 * time.Second); err != nil && strings.Contains(err.Error(), "SQLSTATE 3D000") && time.Now().Before(deadline); {
		time.Sleep(200 * time.Millisecond)
		got, err = serial("user")
	}
	if err != nil || got != want.SerialNumber.String() {
		t.Errorf("verify-full against the user's CA at the pod IP: serial %s (%v), want the user's certificate %s\n%s", got, err, want.SerialNumber, tail(mgr.Log, 30))
	}
	if _, err := serial("published"); err == nil {
		t.Error("verify-full against pgsync's published CA connects: the pod does not serve the user's certificate")
	}
}
