package e2e

import (
	"crypto/rand"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	pc "github.com/pgsync/pgsync/internal/podcontract"
	"github.com/pgsync/pgsync/internal/tlscert"
)

// TestUserCertificatesRealPods: a two-instance cluster whose
// spec.certificates names Secrets of the user's — a server certificate
// with its CA, a client CA with its key — is created by pgsync apply (the
// standby streaming, which the apply waits for: its streaming_replica
// certificate issued from the user's client CA, the primary verified
// against the user's server CA by name); a client pod given the user's
// CA connects through website-rw with verify-full, and given pgsync's
// published CA it fails verification.
func TestUserCertificatesRealPods(t *testing.T) {
	t.Parallel()
	ctx, env, repo := websiteTest(t, 12*time.Minute)
	cs, ns := env.Client, env.Namespace
	now := time.Now()
	serverCA, err := tlscert.NewCA("user server CA", now, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	clientCA, err := tlscert.NewCA("user client CA", now, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := tlscert.Issue(serverCA, tlscert.Request{CommonName: "website",
		DNSNames: []string{"*.website-hl." + ns + ".svc", "website-rw." + ns + ".svc"}}, now, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []*corev1.Secret{
		{ObjectMeta: metav1.ObjectMeta{Name: "user-server-ca"}, Data: map[string][]byte{pc.CACertKey: serverCA.CertPEM}},
		{ObjectMeta: metav1.ObjectMeta{Name: "user-server"}, Type: corev1.SecretTypeTLS,
			Data: map[string][]byte{corev1.TLSCertKey: leaf.CertPEM, corev1.TLSPrivateKeyKey: leaf.KeyPEM}},
		{ObjectMeta: metav1.ObjectMeta{Name: "user-client-ca"}, Data: map[string][]byte{pc.CACertKey: clientCA.CertPEM, pc.CAKeyKey: clientCA.KeyPEM}},
	} {
		if _, err := cs.CoreV1().Secrets(ns).Create(ctx, s, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	extra := "  certificates:\n    serverCASecret: user-server-ca\n    serverTLSSecret: user-server\n    clientCASecret: user-client-ca\n"
	createWebsite(ctx, t, env, repo, websiteYAML(ns, image1518, 2, extra), "website, two instances, certificates of the user's")

	cm, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, "website-ca", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("ConfigMap website-ca: %v", err)
	}
	rw := "website-rw." + ns + ".svc"
	conn := func(file string) string {
		return fmt.Sprintf(`psql "host=%s port=5432 user=app dbname=app connect_timeout=10 sslmode=verify-full sslrootcert=%s" -qAtc `+
			`"SELECT 'tls ' || ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()" 2>&1 | tail -1; `, rw, file)
	}
	script := fmt.Sprintf("cat > /tmp/user.crt <<'EOF'\n%sEOF\ncat > /tmp/pgsync.crt <<'EOF'\n%sEOF\n", serverCA.CertPEM, cm.Data[pc.CACertKey]) +
		conn("/tmp/user.crt") + conn("/tmp/pgsync.crt")
	got := strings.Split(runPodScript(ctx, t, cs, ns, "usercerts-client", script), "\n")
	if len(got) != 2 || got[0] != "tls true" {
		t.Fatalf("verify-full through %s with the user's CA: %q, want tls true", rw, got)
	}
	if !strings.Contains(got[1], "certificate verify failed") {
		t.Errorf("verify-full with pgsync's published CA: %q, want a verification failure", got[1])
	}
}
