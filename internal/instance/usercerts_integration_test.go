package instance_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgsync/pgsync/internal/instance"
	pc "github.com/pgsync/pgsync/internal/podcontract"
	"github.com/pgsync/pgsync/test/insttest"
	"github.com/pgsync/pgsync/test/kubeletvol"
)

// userPKI makes certificates as a user would with openssl or
// cert-manager: RSA CAs (PKCS#1 keys) and leaves, with crypto/x509.
type userPKI struct {
	t    *testing.T
	cert *x509.Certificate
	key  *rsa.PrivateKey
	// CertPEM and KeyPEM are the CA's Secret keys ca.crt, ca.key.
	CertPEM, KeyPEM []byte
}

func rsaKey(t *testing.T) *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func newUserCA(t *testing.T, cn string) *userPKI {
	key := rsaKey(t)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn, Organization: []string{"user"}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(365 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature, BasicConstraintsValid: true, IsCA: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	return &userPKI{t: t, cert: cert, key: key,
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})}
}

// leaf issues a kubernetes.io/tls pair (tls.crt, tls.key) and returns
// its serial too.
func (ca *userPKI) leaf(cn string, client bool, dns []string, ips ...string) (crt, key []byte, serial *big.Int) {
	k := rsaKey(ca.t)
	usage := x509.ExtKeyUsageServerAuth
	if client {
		usage = x509.ExtKeyUsageClientAuth
	}
	serial = big.NewInt(time.Now().UnixNano())
	tmpl := &x509.Certificate{SerialNumber: serial, Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(200 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment, ExtKeyUsage: []x509.ExtKeyUsage{usage}, DNSNames: dns}
	for _, ip := range ips {
		tmpl.IPAddresses = append(tmpl.IPAddresses, net.ParseIP(ip))
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &k.PublicKey, ca.key)
	if err != nil {
		ca.t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}), serial
}

// writeCerts writes the certs volume as the kubelet updates a projected
// volume (every file at once).
func writeCerts(t *testing.T, dir string, files map[string][]byte) {
	t.Helper()
	if err := kubeletvol.Write(dir, files, 0o444, kubeletvol.Owner{UID: -1, GID: -1}); err != nil {
		t.Fatal(err)
	}
}

// serverSerial is the serial of the certificate instance i serves,
// verified (verify-full at 127.0.0.1) against caFile.
func serverSerial(ctx context.Context, c *insttest.Cluster, i int, caFile string) (*big.Int, error) {
	conn, err := pgx.Connect(ctx, fmt.Sprintf("host=127.0.0.1 port=%d user=postgres password=%s dbname=postgres connect_timeout=3 sslmode=verify-full sslrootcert=%s",
		c.Instances[i].Port, insttest.SuperuserPassword, caFile))
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	tc, ok := conn.PgConn().Conn().(*tls.Conn)
	if !ok {
		return nil, fmt.Errorf("not a TLS connection")
	}
	return tc.ConnectionState().PeerCertificates[0].SerialNumber, nil
}

// TestUserCertificates: spec.certificates' Secrets of the user's, projected
// into the pod (here written as the kubelet writes them), are what the
// instances serve and replicate with: a client connects with verify-full
// against the user's server CA (and no longer against pgsync's); a
// standby streams, logged in by the user's streaming_replica certificate
// (its serial seen by the primary); a renewed server certificate is taken
// by reload (the postmaster not restarted); a certificate that does not
// name the address the instances connect to is named in /status
// tlsProblem. Then CAs of the user's with their keys: the managers issue
// the server and streaming_replica certificates from them.
func TestUserCertificates(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL and a kube-apiserver")
	}
	ctx := context.Background()
	query := func(t *testing.T, c *insttest.Cluster, caFile, q string, out ...any) {
		t.Helper()
		conn, err := pgx.Connect(ctx, fmt.Sprintf("host=127.0.0.1 port=%d user=postgres password=%s dbname=postgres connect_timeout=3 sslmode=verify-full sslrootcert=%s",
			c.Instances[0].Port, insttest.SuperuserPassword, caFile))
		if err != nil {
			t.Fatalf("connect: %v", err)
		}
		defer conn.Close(ctx)
		if err := conn.QueryRow(ctx, q).Scan(out...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	replicaSSL := func(t *testing.T, c *insttest.Cluster, caFile string) (dn, serial, issuer string) {
		t.Helper()
		query(t, c, caFile, `SELECT coalesce(s.client_dn, ''), coalesce(s.client_serial::text, ''), coalesce(s.issuer_dn, '') FROM pg_stat_replication r
			JOIN pg_stat_ssl s USING (pid) WHERE r.application_name = '`+c.Name+`-1'`, &dn, &serial, &issuer)
		return dn, serial, issuer
	}

	t.Run("certificates of the user's", func(t *testing.T) {
		c := insttest.NewCluster(t, "ucert", 2)
		c.NoReplicationPassword = true
		dir := filepath.Join(filepath.Dir(c.CADir), "certs")
		serverCA, clientCA := newUserCA(t, "user server CA"), newUserCA(t, "user client CA")
		names := []string{"*.ucert-hl." + c.Namespace + ".svc", "ucert-rw." + c.Namespace + ".svc"}
		srvCrt, srvKey, srvSerial := serverCA.leaf("ucert", false, names, "127.0.0.1")
		replCrt, replKey, replSerial := clientCA.leaf(pc.ReplicationUser, true, nil)
		files := map[string][]byte{
			"server-ca/ca.crt": serverCA.CertPEM, "server-tls/tls.crt": srvCrt, "server-tls/tls.key": srvKey,
			"client-ca/ca.crt": clientCA.CertPEM, "replication-tls/tls.crt": replCrt, "replication-tls/tls.key": replKey,
		}
		writeCerts(t, dir, files)
		c.Env = append(c.Env, pc.EnvServerCADir+"="+dir+"/server-ca", pc.EnvServerTLSDir+"="+dir+"/server-tls",
			pc.EnvClientCADir+"="+dir+"/client-ca", pc.EnvReplicationTLSDir+"="+dir+"/replication-tls")
		userCA := filepath.Join(dir, "server-ca", "ca.crt")

		c.Start(0)
		c.WaitStatus(0, bootTimeout, "primary", isPrimary)
		if s, err := serverSerial(ctx, c, 0, userCA); err != nil || s.Cmp(srvSerial) != 0 {
			t.Fatalf("verify-full against the user's server CA: serial %v, %v; want the user's certificate %v", s, err, srvSerial)
		}
		if _, err := serverSerial(ctx, c, 0, c.CACert()); err == nil {
			t.Error("verify-full against pgsync's CA connects: the server does not serve the user's certificate")
		}
		c.Start(1)
		c.WaitStatus(1, bootTimeout, "streaming standby", isStreamingStandbyOf(c.Instances[0].Address()))
		dn, serial, issuer := replicaSSL(t, c, userCA)
		if dn != "/CN="+pc.ReplicationUser || serial != replSerial.String() || !strings.Contains(issuer, "user client CA") {
			t.Errorf("the standby's client certificate: %q serial %s issuer %q; want the user's (serial %s)", dn, serial, issuer, replSerial)
		}
		if st, _ := c.Status(0); st.TLSProblem != "" {
			t.Errorf("tlsProblem %q with certificates in order", st.TLSProblem)
		}

		var started time.Time
		query(t, c, userCA, `SELECT pg_postmaster_start_time()`, &started)
		renewed, renewedKey, renewedSerial := serverCA.leaf("ucert", false, names, "127.0.0.1")
		files["server-tls/tls.crt"], files["server-tls/tls.key"] = renewed, renewedKey
		writeCerts(t, dir, files)
		deadline := time.Now().Add(30 * time.Second)
		for {
			s, err := serverSerial(ctx, c, 0, userCA)
			if err == nil && s.Cmp(renewedSerial) == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the renewed certificate is not served after 30 s: %v, %v\n%s", s, err, c.LogTail(0, 30))
			}
			time.Sleep(200 * time.Millisecond)
		}
		var after time.Time
		query(t, c, userCA, `SELECT pg_postmaster_start_time()`, &after)
		if !after.Equal(started) {
			t.Errorf("the postmaster restarted (%v, then %v): a renewal is a reload", started, after)
		}

		// A certificate for the Services alone: verify-full to the
		// advertised address would fail.
		narrow, narrowKey, _ := serverCA.leaf("ucert", false, []string{"ucert-rw." + c.Namespace + ".svc"})
		files["server-tls/tls.crt"], files["server-tls/tls.key"] = narrow, narrowKey
		writeCerts(t, dir, files)
		st := c.WaitStatus(0, 30*time.Second, "tlsProblem", func(s instance.Status) bool { return s.TLSProblem != "" })
		if !strings.Contains(st.TLSProblem, "does not name 127.0.0.1") {
			t.Errorf("tlsProblem %q, want it to name 127.0.0.1", st.TLSProblem)
		}
		b, _ := os.ReadFile(c.Instances[0].LogFile)
		if !strings.Contains(string(b), "does not name 127.0.0.1") {
			t.Error("the problem is not logged")
		}
		files["server-tls/tls.crt"], files["server-tls/tls.key"] = renewed, renewedKey
		writeCerts(t, dir, files)
		c.WaitStatus(0, 30*time.Second, "no tlsProblem", func(s instance.Status) bool { return s.TLSProblem == "" })
	})

	t.Run("CAs of the user's, the managers issuing", func(t *testing.T) {
		c := insttest.NewCluster(t, "uca", 2)
		c.NoReplicationPassword = true
		dir := filepath.Join(filepath.Dir(c.CADir), "certs")
		serverCA, clientCA := newUserCA(t, "user server CA"), newUserCA(t, "user client CA")
		writeCerts(t, dir, map[string][]byte{
			"server-ca/ca.crt": serverCA.CertPEM, "server-ca/ca.key": serverCA.KeyPEM,
			"client-ca/ca.crt": clientCA.CertPEM, "client-ca/ca.key": clientCA.KeyPEM,
		})
		c.Env = append(c.Env, pc.EnvServerCADir+"="+dir+"/server-ca", pc.EnvClientCADir+"="+dir+"/client-ca")
		userCA := filepath.Join(dir, "server-ca", "ca.crt")
		c.Start(0)
		c.WaitStatus(0, bootTimeout, "primary", isPrimary)
		if _, err := serverSerial(ctx, c, 0, userCA); err != nil {
			t.Fatalf("verify-full against the user's server CA: %v", err)
		}
		if _, err := serverSerial(ctx, c, 0, c.CACert()); err == nil {
			t.Error("verify-full against pgsync's CA connects: the server certificate is not issued from the user's CA")
		}
		c.Start(1)
		c.WaitStatus(1, bootTimeout, "streaming standby", isStreamingStandbyOf(c.Instances[0].Address()))
		if dn, _, issuer := replicaSSL(t, c, userCA); dn != "/CN="+pc.ReplicationUser || !strings.Contains(issuer, "user client CA") {
			t.Errorf("the standby's client certificate: %q issued by %q; want CN=%s from the user's client CA", dn, issuer, pc.ReplicationUser)
		}
	})
}
