package instance_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/pgsync/pgsync/internal/instance"
	pc "github.com/pgsync/pgsync/internal/podcontract"
	"github.com/pgsync/pgsync/internal/tlscert"
	"github.com/pgsync/pgsync/test/insttest"
)

// TestTLS: with the cluster's CA mounted and no replication password, the
// managers serve TLS only (their certificates naming the Services, the pod,
// the advertised address and serverAltDNSNames), stream by certificate,
// verify their upstream, tell a fake primary nothing, and take a new CA by
// reload.
func TestTLS(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL and a kube-apiserver")
	}
	c := insttest.NewCluster(t, "tls", 3)
	c.NoReplicationPassword = true
	c.Env = append(c.Env, pc.EnvServerAltDNSNames+"=db.example.com")
	ctx := context.Background()
	primary := func(s instance.Status) bool { return isPrimary(s) }
	super := func(i int, extra string) string {
		return fmt.Sprintf("host=127.0.0.1 port=%d user=postgres password=%s dbname=postgres connect_timeout=3 %s",
			c.Instances[i].Port, insttest.SuperuserPassword, extra)
	}
	verifyFull := func(i int, ca string) string {
		return super(i, "sslmode=verify-full sslrootcert="+ca)
	}
	query := func(t *testing.T, dsn, q string, out ...any) {
		t.Helper()
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Fatalf("connect: %v", err)
		}
		defer conn.Close(ctx)
		if err := conn.QueryRow(ctx, q).Scan(out...); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}

	steps := []struct {
		name string
		f    func(t *testing.T)
	}{
		{"a standby streams by certificate, with no replication password", func(t *testing.T) {
			c.Start(0)
			c.WaitStatus(0, bootTimeout, "primary", primary)
			c.Start(1)
			c.WaitStatus(1, bootTimeout, "streaming standby", isStreamingStandbyOf(c.Instances[0].Address()))
			var ssl bool
			var dn string
			query(t, verifyFull(0, c.CACert()), `SELECT s.ssl, coalesce(s.client_dn, '') FROM pg_stat_replication r
				JOIN pg_stat_ssl s USING (pid) WHERE r.application_name = 'tls-1'`, &ssl, &dn)
			if !ssl || dn != "/CN="+pc.ReplicationUser {
				t.Errorf("the standby's connection: ssl %v, client certificate %q; want TLS and CN=%s", ssl, dn, pc.ReplicationUser)
			}
			var nopw bool
			query(t, verifyFull(0, c.CACert()), `SELECT rolpassword IS NULL FROM pg_authid WHERE rolname = 'streaming_replica'`, &nopw)
			if !nopw {
				t.Error("streaming_replica has a password")
			}
			b, err := os.ReadFile(c.Instances[1].RunDir + "/pgpass")
			if err != nil {
				t.Fatal(err)
			}
			for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
				if strings.HasPrefix(line, "*") || strings.Contains(line, pc.ReplicationUser) {
					t.Errorf("password file line %q: a wildcard host or the replication user", strings.SplitN(line, ":", 4)[:3])
				}
			}
		}},
		{"a plaintext remote connection is refused", func(t *testing.T) {
			for _, user := range [][2]string{{"postgres", insttest.SuperuserPassword}, {"app", insttest.AppPassword}} {
				err := ping(ctx, fmt.Sprintf("host=127.0.0.1 port=%d user=%s password=%s dbname=postgres sslmode=disable connect_timeout=3",
					c.Instances[0].Port, user[0], user[1]))
				if err == nil || !strings.Contains(err.Error(), "no encryption") {
					t.Errorf("%s without TLS: %v, want pg_hba's rejection (no encryption)", user[0], err)
				}
			}
		}},
		{"psql and pgx connect with verify-full and the published CA", func(t *testing.T) {
			if err := ping(ctx, verifyFull(0, c.CACert())); err != nil {
				t.Errorf("pgx verify-full to the advertised address: %v", err)
			}
			psql := func(host string) (string, error) {
				cmd := exec.Command(c.PGBin.Path("psql"), "-XAtc", "SELECT current_user",
					fmt.Sprintf("host=%s hostaddr=127.0.0.1 port=%d user=app dbname=app sslmode=verify-full sslrootcert=%s connect_timeout=3",
						host, c.Instances[0].Port, c.CACert()))
				cmd.Env = append(os.Environ(), "PGPASSWORD="+insttest.AppPassword, "HOME=/nonexistent")
				out, err := cmd.CombinedOutput()
				return strings.TrimSpace(string(out)), err
			}
			for _, h := range []string{"tls-rw." + c.Namespace + ".svc", "tls-rw", "tls-r." + c.Namespace, "tls-0.tls-hl." + c.Namespace + ".svc", "db.example.com"} {
				if out, err := psql(h); err != nil || out != "app" {
					t.Errorf("psql verify-full as %s: %v %s", h, err, out)
				}
			}
			if out, err := psql("tls-rw.elsewhere.svc"); err == nil {
				t.Errorf("psql verify-full against a name the certificate does not carry connected: %s", out)
			}
		}},
		{"a fake primary on the advertised address learns no password", func(t *testing.T) {
			fake := newFakePrimary(t)
			real := c.Instances[0].Address()
			setAddress := func(addr string) {
				patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q,%q:"tls-0"}}}`, pc.AnnPrimaryAddress, addr, pc.AnnPrimaryTLS)
				if _, err := c.Admin.CoordinationV1().Leases(c.Namespace).Patch(ctx, "tls-primary", types.MergePatchType, []byte(patch),
					metav1.PatchOptions{}); err != nil {
					t.Fatal(err)
				}
			}
			setAddress(fake.addr())
			c.Start(2) // clones (pg_basebackup); tls-1 follows (the WAL receiver)
			deadline := time.Now().Add(30 * time.Second)
			for time.Now().Before(deadline) && fake.count() < 4 {
				time.Sleep(100 * time.Millisecond)
			}
			setAddress(real)
			got, conns, handshakes := fake.result()
			if conns < 4 {
				t.Fatalf("the fake primary saw %d connections, want at least 4 (the clone's and the WAL receiver's)", conns)
			}
			for _, secret := range []string{insttest.SuperuserPassword, insttest.ReplicationPassword, insttest.AppPassword} {
				if bytes.Contains(got, []byte(secret)) {
					t.Errorf("the fake primary learnt a password")
				}
			}
			if handshakes > 0 {
				t.Errorf("%d clients completed a TLS handshake with a certificate the cluster's CA did not sign", handshakes)
			}
			c.WaitStatus(2, bootTimeout, "streaming standby (a clone over TLS)", isStreamingStandbyOf(real))
			c.WaitStatus(1, stepTimeout, "streaming standby again", isStreamingStandbyOf(real))
		}},
		{"a new CA is picked up by reload, not a restart", func(t *testing.T) {
			var started, loaded time.Time
			query(t, verifyFull(0, c.CACert()), `SELECT pg_postmaster_start_time(), pg_conf_load_time()`, &started, &loaded)
			old, err := os.ReadFile(c.CACert())
			if err != nil {
				t.Fatal(err)
			}
			oldFile := c.Dir + "/old-ca.crt"
			if err := os.WriteFile(oldFile, old, 0o644); err != nil {
				t.Fatal(err)
			}
			ca, err := tlscert.NewCA("pgsync tls (rotated)", time.Now(), rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			c.WriteCA(ca)
			newFile := c.CACert()
			var last error
			for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
				if last = ping(ctx, verifyFull(0, newFile)); last == nil {
					break
				}
			}
			if last != nil {
				t.Fatalf("verify-full with the new CA: %v", last)
			}
			var started2, loaded2 time.Time
			query(t, verifyFull(0, newFile), `SELECT pg_postmaster_start_time(), pg_conf_load_time()`, &started2, &loaded2)
			if !started2.Equal(started) {
				t.Errorf("postgres restarted: started %s, then %s", started, started2)
			}
			if !loaded2.After(loaded) {
				t.Errorf("no reload: configuration loaded at %s, then %s", loaded, loaded2)
			}
			if err := ping(ctx, verifyFull(0, oldFile)); err == nil {
				t.Error("verify-full with the replaced CA still connects")
			}
			// The standby reconnects with its new client certificate,
			// which the primary checks against the new CA.
			var n int
			query(t, verifyFull(0, newFile), `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_replication`, &n)
			for i := 1; i <= 2; i++ {
				c.WaitStatus(i, stepTimeout, "streaming again after the CA change", isStreamingStandbyOf(c.Instances[0].Address()))
			}
		}},
	}
	for _, s := range steps {
		if !t.Run(s.name, s.f) {
			for i := range c.Instances {
				t.Logf("%s log:\n%s", c.Instances[i].Name, c.LogTail(i, 40))
			}
			return
		}
	}
}

// fakePrimary is what a hijacked primary address reaches: a server that
// answers TLS with a certificate of its own CA (for 127.0.0.1) or refuses
// TLS, then asks for a cleartext password, and records every byte a
// client sends it.
type fakePrimary struct {
	ln   net.Listener
	cert tls.Certificate

	mu         sync.Mutex
	got        []byte
	conns      int
	handshakes int
}

func newFakePrimary(t *testing.T) *fakePrimary {
	t.Helper()
	ca, err := tlscert.NewCA("attacker", time.Now(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	leaf, err := tlscert.Issue(ca, tlscert.Request{CommonName: "tls-0", DNSNames: []string{"localhost"},
		IPs: []net.IP{net.ParseIP("127.0.0.1")}}, time.Now(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.X509KeyPair(append(leaf.CertPEM, ca.CertPEM...), leaf.KeyPEM)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakePrimary{ln: ln, cert: cert}
	t.Cleanup(func() { ln.Close() })
	go f.serve()
	return f
}

func (f *fakePrimary) addr() string { return f.ln.Addr().String() }

func (f *fakePrimary) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.conns
}

func (f *fakePrimary) result() ([]byte, int, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return bytes.Clone(f.got), f.conns, f.handshakes
}

func (f *fakePrimary) serve() {
	for {
		conn, err := f.ln.Accept()
		if err != nil {
			return
		}
		f.mu.Lock()
		f.conns++
		n := f.conns
		f.mu.Unlock()
		go f.handle(conn, n%2 == 0)
	}
}

// record keeps what r yields.
type record struct {
	r io.Reader
	f *fakePrimary
}

func (r record) Read(p []byte) (int, error) {
	n, err := r.r.Read(p)
	r.f.mu.Lock()
	r.f.got = append(r.f.got, p[:n]...)
	r.f.mu.Unlock()
	return n, err
}

func (f *fakePrimary) handle(conn net.Conn, offerTLS bool) {
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	var rw io.ReadWriter = conn
	first, err := readMessage(record{conn, f})
	if err != nil {
		return
	}
	if len(first) == 4 && binary.BigEndian.Uint32(first) == 80877103 { // SSLRequest
		if !offerTLS {
			if _, err := conn.Write([]byte("N")); err != nil {
				return
			}
		} else {
			if _, err := conn.Write([]byte("S")); err != nil {
				return
			}
			tc := tls.Server(conn, &tls.Config{Certificates: []tls.Certificate{f.cert}})
			if err := tc.Handshake(); err != nil {
				return
			}
			f.mu.Lock()
			f.handshakes++
			f.mu.Unlock()
			rw = tc
		}
		if _, err := readMessage(record{rw, f}); err != nil { // the startup message
			return
		}
	}
	// AuthenticationCleartextPassword, then whatever comes back.
	if _, err := rw.Write([]byte{'R', 0, 0, 0, 8, 0, 0, 0, 3}); err != nil {
		return
	}
	_, _ = io.Copy(io.Discard, record{rw, f})
}

// readMessage reads one untyped (startup) message's body.
func readMessage(r io.Reader) ([]byte, error) {
	var n [4]byte
	if _, err := io.ReadFull(r, n[:]); err != nil {
		return nil, err
	}
	l := int(binary.BigEndian.Uint32(n[:]))
	if l < 4 || l > 1<<16 {
		return nil, fmt.Errorf("length %d", l)
	}
	body := make([]byte, l-4)
	_, err := io.ReadFull(r, body)
	return body, err
}
