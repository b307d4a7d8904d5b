package instance

import (
	"encoding/binary"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"

	"os"
	"strings"
	"testing"

	"github.com/pgsync/pgsync/internal/instance/pgbin"
	"github.com/pgsync/pgsync/test/prereq"
)

func TestLoadCredentials(t *testing.T) {
	env := map[string]string{
		"PGSYNC_SUPERUSER_PASSWORD":        "su",
		"PGSYNC_REPLICATION_PASSWORD_FILE": "/secrets/replication/password",
		"PGSYNC_APP_USER":                  "app",
		"PGSYNC_APP_PASSWORD_FILE":         "/secrets/app/password",
	}
	files := map[string]string{
		"/secrets/replication/password": "repl\n",
		"/secrets/app/password":         "apppw",
	}
	read := func(p string) ([]byte, error) {
		if v, ok := files[p]; ok {
			return []byte(v), nil
		}
		return nil, os.ErrNotExist
	}
	c, err := LoadCredentials(func(k string) string { return env[k] }, read)
	if err != nil {
		t.Fatal(err)
	}
	if c.SuperuserPassword != "su" || c.ReplicationPassword != "repl" || c.AppUser != "app" || c.AppPassword != "apppw" {
		t.Errorf("credentials = %+v", c)
	}

	delete(env, "PGSYNC_SUPERUSER_PASSWORD")
	delete(env, "PGSYNC_APP_PASSWORD_FILE")
	env["PGSYNC_REPLICATION_PASSWORD_FILE"] = "/missing"
	c, err = LoadCredentials(func(k string) string { return env[k] }, read)
	for _, want := range []string{"PGSYNC_APP_USER is set without"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("error %v does not mention %s", err, want)
		}
	}
	// No superuser password is needed (peer authentication locally; none
	// while access is off): its file is only remembered.
	if err != nil && strings.Contains(err.Error(), "SUPERUSER") {
		t.Errorf("a missing superuser password is an error: %v", err)
	}
	// The replication password is optional (with TLS, standbys log in by
	// certificate): its projection's file may be missing.
	if err != nil && strings.Contains(err.Error(), "REPLICATION") || c.ReplicationPassword != "" {
		t.Errorf("a missing replication password file: error %v, password %q", err, c.ReplicationPassword)
	}
	if err != nil && strings.Contains(err.Error(), "su") && strings.Contains(err.Error(), "apppw") {
		t.Error("error leaks a password")
	}
}

func TestPostgresEnvDropsSecrets(t *testing.T) {
	got := postgresEnv([]string{"PATH=/bin", "PGSYNC_SUPERUSER_PASSWORD=x", "KUBECONFIG=/k", "PGPASSWORD=y", "LANG=C", "PGSYNC_APP_PASSWORD_FILE=/f"})
	if strings.Join(got, " ") != "PATH=/bin LANG=C" {
		t.Errorf("postgresEnv = %v", got)
	}
}

func TestParseControlData(t *testing.T) {
	out := `pg_control version number:            1300
Catalog version number:               202209061
Database system identifier:           7441234567890123456
Database cluster state:               shut down
pg_control last modified:             Thu 26 Nov 2026 00:47:15 UTC
Latest checkpoint location:           0/4029368
Latest checkpoint's REDO location:    0/4029368
Latest checkpoint's TimeLineID:       2
`
	cd, err := parseControlData(out)
	if err != nil {
		t.Fatal(err)
	}
	if cd.State != "shut down" || cd.Checkpoint.String() != "0/4029368" || cd.TimeLineID != 2 || cd.SystemID != "7441234567890123456" {
		t.Errorf("parsed %+v", cd)
	}
	if _, err := parseControlData("garbage"); err == nil {
		t.Error("garbage accepted")
	}
}

func TestScramVerifierFormat(t *testing.T) {
	v, err := scramVerifierWithSalt("pencil", []byte("0123456789abcdef"), 4096)
	if err != nil {
		t.Fatal(err)
	}
	// Deterministic for a fixed salt, and in PostgreSQL's format. (That
	// PostgreSQL accepts it is shown by the integration test, where the
	// application role logs in with a password stored this way.)
	again, _ := scramVerifierWithSalt("pencil", []byte("0123456789abcdef"), 4096)
	if v != again || !strings.HasPrefix(v, "SCRAM-SHA-256$4096:MDEyMzQ1Njc4OWFiY2RlZg==$") || strings.Count(v, ":") != 2 {
		t.Errorf("verifier %q", v)
	}
	other, _ := scramVerifierWithSalt("pencil2", []byte("0123456789abcdef"), 4096)
	if other == v {
		t.Error("different passwords, same verifier")
	}
	if strings.Contains(v, "pencil") {
		t.Error("verifier contains the password")
	}
}

// TestControlFileMatchesPgControldata compares the direct read of
// global/pg_control with pg_controldata's output on a real cluster made by
// initdb (skipped without PostgreSQL binaries).
func TestControlFileMatchesPgControldata(t *testing.T) {
	bin, err := pgbin.Find(os.Getenv("PGSYNC_PG_BIN"), pgbin.DefaultGlobs)
	if err != nil {
		prereq.Missing(t, "PostgreSQL binaries not found: %v", err)
	}
	base, err := os.MkdirTemp("", "pgctl-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(base) })
	initdb := exec.Command(bin.Path("initdb"), "-D", filepath.Join(base, "pgdata"), "--no-sync", "-U", "postgres")
	if os.Getuid() == 0 {
		// initdb refuses to run as root: run it as the postgres OS user.
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Skipf("running as root without a postgres OS user: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chmod(base, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chown(base, uid, gid); err != nil {
			t.Fatal(err)
		}
		initdb.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	}
	dir := filepath.Join(base, "pgdata")
	if out, err := initdb.CombinedOutput(); err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	out, err := exec.Command(bin.Path("pg_controldata"), "-D", dir).Output()
	if err != nil {
		t.Fatal(err)
	}
	want, err := parseControlData(string(out))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "global", "pg_control"))
	if err != nil {
		t.Fatal(err)
	}
	got, ok := parseControlFile(b)
	if !ok || got != want {
		t.Errorf("direct read %+v (ok %v), pg_controldata %+v", got, ok, want)
	}
}

func TestParseControlFile(t *testing.T) {
	// The head of a PostgreSQL 15 pg_control after a clean shutdown.
	b := make([]byte, 64)
	le := binary.NativeEndian
	le.PutUint64(b[0:], 7441234567890123456)
	le.PutUint32(b[8:], 1300)
	le.PutUint32(b[16:], 1)
	le.PutUint64(b[32:], 0x0473BC48)
	le.PutUint32(b[48:], 13)
	cd, ok := parseControlFile(b)
	if !ok || cd.State != "shut down" || cd.Checkpoint.String() != "0/473BC48" || cd.TimeLineID != 13 || cd.SystemID != "7441234567890123456" {
		t.Errorf("parsed %+v ok=%v", cd, ok)
	}
	// The head of the pg_control of a running PostgreSQL 19rc1, as its
	// pg_controldata printed it (version 1905, in production, 0/01784AA8).
	le.PutUint64(b[0:], 7714574136997371487)
	le.PutUint32(b[8:], 1905)
	le.PutUint32(b[16:], 6)
	le.PutUint64(b[32:], 0x01784AA8)
	le.PutUint32(b[48:], 1)
	cd, ok = parseControlFile(b)
	if !ok || cd.State != "in production" || cd.Checkpoint.String() != "0/1784AA8" || cd.TimeLineID != 1 || cd.SystemID != "7714574136997371487" {
		t.Errorf("PostgreSQL 19: parsed %+v ok=%v", cd, ok)
	}
	le.PutUint32(b[8:], 1201)
	if _, ok := parseControlFile(b); ok {
		t.Error("an unknown pg_control_version was decoded")
	}
	if _, ok := parseControlFile(b[:20]); ok {
		t.Error("a short file was decoded")
	}
}
