package instance_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgsync/pgsync/internal/instance"
	pc "github.com/pgsync/pgsync/internal/podcontract"
	"github.com/pgsync/pgsync/internal/tlscert"
	"github.com/pgsync/pgsync/test/insttest"
)

// TestCARotation: the CA's generations in a real PostgreSQL pair. A CA
// near expiry is reported due; a new generation that is not valid yet is
// trusted and not issued from; once valid, both instances issue from it
// and reload, with no restart; the standby streams on with its new client
// certificate.
func TestCARotation(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL and a kube-apiserver")
	}
	c := insttest.NewCluster(t, "carot", 2)
	c.NoReplicationPassword = true
	c.Env = append(c.Env, fmt.Sprintf("%s=%d", pc.EnvCAGenerations, pc.CAGenerations))
	ctx := context.Background()
	dsn := func(rootCert string) string {
		return fmt.Sprintf("host=127.0.0.1 port=%d user=postgres password=%s dbname=postgres connect_timeout=3 sslmode=verify-full sslrootcert=%s",
			c.Instances[0].Port, insttest.SuperuserPassword, rootCert)
	}
	newCA := func(name string, at time.Time) (tlscert.Pair, string) {
		ca, err := tlscert.NewCA(name, at, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(c.Dir, name+".crt")
		if err := os.WriteFile(file, ca.CertPEM, 0o644); err != nil {
			t.Fatal(err)
		}
		return ca, file
	}
	waitCA := func(i int, what string, ok func(*pc.CAStatus) bool) {
		t.Helper()
		c.WaitStatus(i, stepTimeout, what, func(s instance.Status) bool { return s.CA != nil && ok(s.CA) })
	}
	startTime := func(rootCert string) (time.Time, error) {
		conn, err := pgx.Connect(ctx, dsn(rootCert))
		if err != nil {
			return time.Time{}, err
		}
		defer conn.Close(ctx)
		var at time.Time
		return at, conn.QueryRow(ctx, `SELECT pg_postmaster_start_time()`).Scan(&at)
	}

	// Generation 1 made nine and a half years ago: half a year left.
	old, oldFile := newCA("gen1", time.Now().Add(-tlscert.CAValidity+180*24*time.Hour))
	c.WriteCAGenerations(map[int]tlscert.Pair{1: old})
	c.Start(0)
	c.WaitStatus(0, bootTimeout, "primary", isPrimary)
	c.Start(1)
	c.WaitStatus(1, bootTimeout, "streaming standby", isStreamingStandbyOf(c.Instances[0].Address()))
	for i := range 2 {
		waitCA(i, "generation 1, rotation due", func(s *pc.CAStatus) bool {
			return s.Mounted == pc.CAGenerations && s.Newest == 1 && s.Issuer == 1 && s.RotationDue
		})
	}
	started, err := startTime(oldFile)
	if err != nil {
		t.Fatalf("verify-full against generation 1: %v", err)
	}

	// Generation 2 as pgsync creates it: valid an hour from now.
	later, laterFile := newCA("gen2-later", time.Now().Add(time.Hour))
	c.WriteCAGenerations(map[int]tlscert.Pair{1: old, 2: later})
	for i := range 2 {
		waitCA(i, "generation 2 seen, generation 1 issuing", func(s *pc.CAStatus) bool {
			return s.Newest == 2 && s.Issuer == 1 && !s.RotationDue
		})
	}
	if _, err := startTime(oldFile); err != nil {
		t.Errorf("verify-full against generation 1 while generation 2 is not valid yet: %v", err)
	}
	if _, err := startTime(laterFile); err == nil {
		t.Error("the server's certificate verifies against generation 2 before it is valid")
	}

	// The month has passed: generation 2 (made valid now) issues.
	now, nowFile := newCA("gen2", time.Now())
	c.WriteCAGenerations(map[int]tlscert.Pair{1: old, 2: now})
	for i := range 2 {
		waitCA(i, "generation 2 issuing", func(s *pc.CAStatus) bool { return s.Newest == 2 && s.Issuer == 2 })
	}
	var last error
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if _, last = startTime(nowFile); last == nil {
			break
		}
	}
	if last != nil {
		t.Fatalf("verify-full against generation 2 once it issues: %v", last)
	}
	if again, _ := startTime(nowFile); !again.Equal(started) {
		t.Errorf("postgres restarted: started %s, then %s", started, again)
	}
	if _, err := startTime(oldFile); err == nil {
		t.Error("the server's certificate still verifies against generation 1 alone")
	}
	// The standby reconnects with a client certificate of generation 2,
	// checked by the primary against its bundle, and verifies the
	// primary's new certificate.
	conn, err := pgx.Connect(ctx, dsn(nowFile))
	if err != nil {
		t.Fatal(err)
	}
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(pg_terminate_backend(pid)) FROM pg_stat_replication`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("terminate the walsender: %d, %v", n, err)
	}
	conn.Close(ctx)
	c.WaitStatus(1, stepTimeout, "streaming again under generation 2", isStreamingStandbyOf(c.Instances[0].Address()))
}
