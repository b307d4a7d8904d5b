package instance_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pgsync/pgsync/internal/instance"
	pc "github.com/pgsync/pgsync/internal/podcontract"
	"github.com/pgsync/pgsync/test/insttest"
)

// TestSeparateWALDirectory (spec.walStorage): with --wal-dir, the primary's
// initdb and the standby's pg_basebackup put pg_wal in the WAL volume's
// directory, PGDATA/pg_wal links to it, WAL is written there, and the
// standby streams what the primary commits.
func TestSeparateWALDirectory(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL and a kube-apiserver")
	}
	c := insttest.NewCluster(t, "wal", 2)
	c.SeparateWAL = true
	ctx := context.Background()
	c.Start(0)
	c.WaitStatus(0, bootTimeout, "primary", isPrimary)
	c.Start(1)
	c.WaitStatus(1, bootTimeout, "streaming standby", isStreamingStandbyOf(c.Instances[0].Address()))

	for _, in := range c.Instances {
		link := filepath.Join(in.PGData, "pg_wal")
		target, err := os.Readlink(link)
		if err != nil {
			t.Fatalf("%s: PGDATA/pg_wal is not a symlink: %v", in.Name, err)
		}
		if target != in.WALDir {
			t.Errorf("%s: pg_wal → %s, want %s", in.Name, target, in.WALDir)
		}
		segs, err := filepath.Glob(filepath.Join(in.WALDir, strings.Repeat("[0-9A-F]", 24)))
		if err != nil || len(segs) == 0 {
			t.Errorf("%s: no WAL segment in %s (%v)", in.Name, in.WALDir, err)
		}
	}

	app := c.DSN("app", insttest.AppPassword, "app")
	if err := insttest.CreateProbeTable(ctx, app); err != nil {
		t.Fatal(err)
	}
	primary, err := pgx.Connect(ctx, c.InstanceDSN(0, "postgres", insttest.SuperuserPassword, "postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer primary.Close(ctx)
	var lsn string
	if err := primary.QueryRow(ctx, "SELECT pg_current_wal_insert_lsn()::text").Scan(&lsn); err != nil {
		t.Fatal(err)
	}
	want, err := pc.ParseLSN(lsn)
	if err != nil {
		t.Fatal(err)
	}
	c.WaitStatus(1, stepTimeout, "replayed "+lsn, func(s instance.Status) bool {
		got, err := pc.ParseLSN(s.ReplayedLSN)
		return err == nil && got >= want
	})
}
