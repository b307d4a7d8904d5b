package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	pc "github.com/pgsync/pgsync/internal/podcontract"
)

// TestTLSRealPods: an application pod, given only the CA certificate pgsync
// published in the ConfigMap website-ca, connects through website-rw with
// sslmode=verify-full (the server certificate names the Service in its
// .svc form and is signed by that CA) over TLS; the same login without TLS
// is refused, and a name the certificate does not carry fails
// verification.
func TestTLSRealPods(t *testing.T) {
	t.Parallel()
	ctx, env, repo := websiteTest(t, 10*time.Minute)
	cs, ns := env.Client, env.Namespace
	createWebsite(ctx, t, env, repo, websiteYAML(ns, image1518, 1, ""), "website, one instance")
	cm, err := cs.CoreV1().ConfigMaps(ns).Get(ctx, "website-ca", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("ConfigMap website-ca: %v", err)
	}
	ca := cm.Data[pc.CACertKey]
	if !strings.HasPrefix(ca, "-----BEGIN CERTIFICATE-----") || strings.Contains(ca, "PRIVATE KEY") {
		t.Fatalf("website-ca's %s is not just a certificate", pc.CACertKey)
	}
	conn := func(host, mode string) string {
		return fmt.Sprintf(`psql "host=%s port=5432 user=app dbname=app connect_timeout=10 sslmode=%s sslrootcert=/tmp/ca.crt" -qAtc `+
			`"SELECT 'tls ' || ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()" 2>&1 | tail -1; `, host, mode)
	}
	rw := "website-rw." + ns + ".svc"
	script := fmt.Sprintf("cat > /tmp/ca.crt <<'EOF'\n%sEOF\n", ca) +
		conn(rw, "verify-full") + conn(rw, "disable") + conn("website-rw."+ns+".svc.cluster.local", "verify-full")
	got := strings.Split(runPodScript(ctx, t, cs, ns, "tls-client", script), "\n")
	if len(got) != 3 || got[0] != "tls true" {
		t.Fatalf("verify-full through %s: %q, want tls true", rw, got)
	}
	if !strings.Contains(got[1], "no encryption") {
		t.Errorf("without TLS: %q, want pg_hba's refusal (no encryption)", got[1])
	}
	if !strings.Contains(got[2], "does not match host name") {
		t.Errorf("verify-full through a name the certificate does not carry: %q, want a verification failure", got[2])
	}
}
