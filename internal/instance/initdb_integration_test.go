package instance_test

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/jackc/pgx/v5"

	pc "github.com/pgsync/pgsync/internal/podcontract"
	"github.com/pgsync/pgsync/test/insttest"
)

// TestBootstrapInitDB (spec.bootstrap.initdb): the primary's initdb takes
// the rendered options and the post-init SQL runs in the right databases,
// template1's before the application database is created from it.
func TestBootstrapInitDB(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL and a kube-apiserver")
	}
	c := insttest.NewCluster(t, "initdb", 1)
	opts := pc.InitDB{
		Encoding: "LATIN1", LocaleCollate: "C", LocaleCType: "C",
		NoDataChecksums: true, WALSegmentSize: 32,
		PostInitSQL:            []string{"CREATE TABLE in_postgres (id int)", "CREATE ROLE reporting NOLOGIN"},
		PostInitTemplateSQL:    []string{"CREATE TABLE in_template (id int)"},
		PostInitApplicationSQL: []string{"CREATE TABLE in_app (id int); GRANT SELECT ON in_app TO reporting"},
	}
	b, err := json.Marshal(opts)
	if err != nil {
		t.Fatal(err)
	}
	c.Env = []string{pc.EnvAppUser + "=alice", pc.EnvAppDatabase + "=shop", pc.EnvInitDB + "=" + string(b)}
	ctx := context.Background()
	c.Start(0)
	c.WaitStatus(0, bootTimeout, "primary", isPrimary)

	// The owner logs in to its database with the password of the
	// (rendered) Secret.
	app, err := pgx.Connect(ctx, c.InstanceDSN(0, "alice", insttest.AppPassword, "shop"))
	if err != nil {
		t.Fatalf("owner alice cannot connect to shop: %v", err)
	}
	defer app.Close(ctx)
	var enc, collate, ctype, owner string
	if err := app.QueryRow(ctx, `SELECT pg_encoding_to_char(encoding), datcollate, datctype, pg_get_userbyid(datdba)
  FROM pg_database WHERE datname = current_database()`).Scan(&enc, &collate, &ctype, &owner); err != nil {
		t.Fatal(err)
	}
	if enc != "LATIN1" || collate != "C" || ctype != "C" || owner != "alice" {
		t.Errorf("shop: encoding %s, collate %s, ctype %s, owner %s; want LATIN1, C, C, alice", enc, collate, ctype, owner)
	}
	var checksums, segsize string
	if err := app.QueryRow(ctx, `SELECT current_setting('data_checksums'), current_setting('wal_segment_size')`).Scan(&checksums, &segsize); err != nil {
		t.Fatal(err)
	}
	if checksums != "off" || segsize != "32MB" {
		t.Errorf("data_checksums %s, wal_segment_size %s; want off, 32MB", checksums, segsize)
	}
	for _, tc := range []struct{ db, table string }{
		{"postgres", "in_postgres"}, {"template1", "in_template"}, {"shop", "in_template"}, {"shop", "in_app"},
	} {
		conn, err := pgx.Connect(ctx, c.InstanceDSN(0, "postgres", insttest.SuperuserPassword, tc.db))
		if err != nil {
			t.Fatal(err)
		}
		var found bool
		if err := conn.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, tc.table).Scan(&found); err != nil {
			t.Fatal(err)
		}
		if !found {
			t.Errorf("database %s has no table %s", tc.db, tc.table)
		}
		conn.Close(ctx)
	}
	var granted bool
	if err := app.QueryRow(ctx, `SELECT has_table_privilege('reporting', 'in_app', 'SELECT')`).Scan(&granted); err != nil || !granted {
		t.Errorf("postInitApplicationSQL's second statement did not run (granted %v, %v)", granted, err)
	}
}
