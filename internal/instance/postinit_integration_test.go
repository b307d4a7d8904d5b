package instance_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgsync/pgsync/internal/instance"
	pc "github.com/pgsync/pgsync/internal/podcontract"
	"github.com/pgsync/pgsync/test/insttest"
)

// sqlRefsCluster starts a one-instance cluster whose PGSYNC_INITDB is o,
// its SQLRefs files in a directory of their own (as the projected volume).
func sqlRefsCluster(t *testing.T, name string, o pc.InitDB) (*insttest.Cluster, string) {
	t.Helper()
	c := insttest.NewCluster(t, name, 1)
	dir := filepath.Join(c.Dir, "post-init-sql")
	for _, sub := range []string{"", "postInitSQLRefs", "postInitTemplateSQLRefs", "postInitApplicationSQLRefs"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	o.SQLRefsDir = dir
	b, err := json.Marshal(o)
	if err != nil {
		t.Fatal(err)
	}
	c.Env = []string{pc.EnvAppDatabase + "=shop", pc.EnvInitDB + "=" + string(b)}
	return c, dir
}

func writeSQL(t *testing.T, c *insttest.Cluster, dir, path, text string) {
	t.Helper()
	if err := c.WriteFileAs(filepath.Join(dir, path), []byte(text)); err != nil {
		t.Fatal(err)
	}
}

// TestBootstrapSQLRefs (spec.bootstrap.initdb.*SQLRefs): a file missing
// holds the bootstrap before initdb, the status naming its Secret and
// key; once there, each phase runs its inline statements, then its
// Secrets' files, then its ConfigMaps', in postgres, template1 (which the
// application database inherits) and the application database.
func TestBootstrapSQLRefs(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL and a kube-apiserver")
	}
	ref := func(field string, n int, secret bool, name, key string) pc.SQLFile {
		return pc.SQLFile{Path: pc.PostInitSQLPath(field, n), Secret: secret, Name: name, Key: key}
	}
	c, dir := sqlRefsCluster(t, "sqlrefs", pc.InitDB{
		PostInitSQL: []string{"CREATE TABLE ran (n serial, what text, db text DEFAULT current_database())",
			"INSERT INTO ran (what) VALUES ('inline')"},
		PostInitSQLRefs: []pc.SQLFile{ref("postInitSQLRefs", 0, true, "boot-secret", "postgres.sql"),
			ref("postInitSQLRefs", 1, false, "boot-sql", "postgres.sql")},
		PostInitTemplateSQLRefs: []pc.SQLFile{ref("postInitTemplateSQLRefs", 0, false, "boot-sql", "template.sql")},
		PostInitApplicationSQL:  []string{"INSERT INTO ran (what) VALUES ('inline')"},
		PostInitApplicationSQLRefs: []pc.SQLFile{ref("postInitApplicationSQLRefs", 0, true, "boot-secret", "app.sql"),
			ref("postInitApplicationSQLRefs", 1, false, "boot-sql", "app.sql")},
	})
	writeSQL(t, c, dir, "postInitSQLRefs/1.sql", "-- from a ConfigMap\nINSERT INTO ran (what) VALUES ('configmap');\n")
	writeSQL(t, c, dir, "postInitTemplateSQLRefs/0.sql", "CREATE TABLE ran (n serial, what text, db text DEFAULT current_database());\n")
	writeSQL(t, c, dir, "postInitApplicationSQLRefs/0.sql", "INSERT INTO ran (what) VALUES ('secret');\nCREATE ROLE reporter LOGIN PASSWORD 'from-a-secret';\n")
	writeSQL(t, c, dir, "postInitApplicationSQLRefs/1.sql", "INSERT INTO ran (what) VALUES ('configmap');\nGRANT SELECT ON ran TO reporter;\n")
	c.Start(0)
	// postgres.sql of the Secret is missing: named, nothing done yet.
	st := c.WaitStatus(0, bootTimeout, "waiting for the Secret's file", func(s instance.Status) bool {
		return strings.Contains(s.LastError, "postInitSQLRefs: Secret boot-secret key postgres.sql missing")
	})
	if strings.Contains(st.LastError, "boot-sql") {
		t.Errorf("lastError names files that are there: %s", st.LastError)
	}
	if _, err := os.Stat(filepath.Join(c.Instances[0].PGData, "PG_VERSION")); err == nil {
		t.Errorf("initdb ran while a post-init SQL file was missing")
	}
	writeSQL(t, c, dir, "postInitSQLRefs/0.sql", "INSERT INTO ran (what) VALUES ('secret');")
	c.WaitStatus(0, bootTimeout, "primary", isPrimary)

	ctx := context.Background()
	for _, tc := range []struct {
		db   string
		want []string
	}{
		{"postgres", []string{"inline postgres", "secret postgres", "configmap postgres"}},
		{"template1", nil},
		{"shop", []string{"inline shop", "secret shop", "configmap shop"}},
	} {
		conn, err := pgx.Connect(ctx, c.InstanceDSN(0, "postgres", insttest.SuperuserPassword, tc.db))
		if err != nil {
			t.Fatal(err)
		}
		rows, err := conn.Query(ctx, `SELECT what || ' ' || db FROM ran ORDER BY n`)
		if err != nil {
			t.Fatalf("%s: %v", tc.db, err)
		}
		got, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatal(err)
		}
		if strings.Join(got, ",") != strings.Join(tc.want, ",") {
			t.Errorf("database %s ran %q, want %q", tc.db, got, tc.want)
		}
		conn.Close(ctx)
	}
	// The role of the Secret's file logs in, and has the ConfigMap's
	// grant (the files ran in order, in shop).
	rep, err := pgx.Connect(ctx, c.InstanceDSN(0, "reporter", "from-a-secret", "shop"))
	if err != nil {
		t.Fatalf("reporter: %v", err)
	}
	defer rep.Close(ctx)
	var n int
	if err := rep.QueryRow(ctx, `SELECT count(*) FROM ran`).Scan(&n); err != nil || n != 3 {
		t.Errorf("reporter reads %d rows of shop's ran (%v), want 3", n, err)
	}
	if _, err := os.Stat(filepath.Join(c.Instances[0].PGData, "pgsync-bootstrap-failed")); !os.IsNotExist(err) {
		t.Errorf("the bootstrap marker is still in PGDATA (%v)", err)
	}
}

// TestBootstrapSQLRefsFailure: a Secret's file that fails stops the
// bootstrap for good — postgres stopped, -rw not routed, across a restart
// of the manager — reported with the file and the statement's position,
// and nothing of the Secret's text reaches the status or the log
// (PostgreSQL's own included).
func TestBootstrapSQLRefsFailure(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL and a kube-apiserver")
	}
	c, dir := sqlRefsCluster(t, "sqlrefsfail", pc.InitDB{
		PostInitSQLRefs:        []pc.SQLFile{{Path: pc.PostInitSQLPath("postInitSQLRefs", 0), Secret: true, Name: "boot-secret", Key: "bad.sql"}},
		PostInitApplicationSQL: []string{"CREATE TABLE never (id int)"},
	})
	const secret = "hunter2-in-the-secret"
	writeSQL(t, c, dir, "postInitSQLRefs/0.sql", "SELECT 1;\nCREATE TABLE t (id int);\nSELECT  '"+secret+"'::int;\n")
	c.Start(0)
	const want = "postInitSQLRefs: Secret boot-secret key bad.sql in database postgres: statement 3, line 3, column 9: ERROR (SQLSTATE 22P02"
	failed := func(s instance.Status) bool { return strings.Contains(s.LastError, want) && !s.PostgresRunning }
	st := c.WaitStatus(0, bootTimeout, "bootstrap failed", failed)
	if st.Role == "primary" {
		t.Errorf("role %s after a failed bootstrap", st.Role)
	}
	time.Sleep(2 * time.Second)
	c.Stop(0, syscall.SIGTERM)
	c.Start(0)
	c.WaitStatus(0, bootTimeout, "still failed after a restart", failed)
	if ep, err := c.RWEndpoint(context.Background()); err == nil && ep != "" {
		t.Errorf("-rw routes to %s after a failed bootstrap", ep)
	}
	st, _ = c.Status(0)
	log, _ := os.ReadFile(c.Instances[0].LogFile)
	for what, text := range map[string]string{"lastError": st.LastError, "log": string(log)} {
		if strings.Contains(text, secret) || strings.Contains(text, "::int") {
			t.Errorf("the %s quotes the Secret's SQL:\n%s", what, text)
		}
	}
}
