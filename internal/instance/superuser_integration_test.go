package instance_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgsync/pgsync/test/insttest"
)

// superuserLogin logs in to instance i over the network as the superuser
// with password.
func superuserLogin(ctx context.Context, c *insttest.Cluster, i int, password string) error {
	conn, err := pgx.Connect(ctx, c.InstanceDSN(i, "postgres", password, "postgres"))
	if err == nil {
		conn.Close(ctx)
	}
	return err
}

// TestSuperuserAccessOff (real PostgreSQL, TLS on): with
// enableSuperuserAccess off (the params ConfigMap's superuser-access key)
// the superuser's remote logins are refused by pgsync's pg_hba whatever
// the password, its password is NULL, and the managers still do all they
// do — bootstrap, a standby's clone, a failover, and the old primary's
// rejoin with pg_rewind — over the local socket by peer authentication
// and as streaming_replica, never as the superuser.
func TestSuperuserAccessOff(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL and a kube-apiserver")
	}
	ctx := context.Background()
	c := insttest.NewCluster(t, "suoff", 2)
	c.SetSuperuserAccess(false)
	app := c.DSN("app", insttest.AppPassword, "app")
	c.Start(0)
	c.WaitStatus(0, bootTimeout, "primary", isPrimary)
	if err := insttest.CreateProbeTable(ctx, app); err != nil {
		t.Fatal(err)
	}
	c.Start(1)
	c.WaitStatus(1, bootTimeout, "streaming standby", isStreamingStandbyOf(c.Instances[0].Address()))

	for _, pw := range []string{insttest.SuperuserPassword, "any-other-password", ""} {
		if err := superuserLogin(ctx, c, 0, pw); err == nil || !strings.Contains(err.Error(), "pg_hba.conf rejects") {
			t.Fatalf("a remote superuser login with password %q: %v, want refused by pg_hba.conf", pw, err)
		}
	}
	if !strings.Contains(readLog(t, c, 0), "superuser password removed (NULL)") {
		t.Error("the primary's manager did not set the superuser's password to NULL")
	}

	to, _, _ := killPrimary(t, c, app, 0)
	if to != 1 {
		t.Fatalf("suoff-%d promoted", to)
	}
	c.Start(0)
	s := c.WaitStatus(0, stepTimeout, "rejoined as a standby", isStreamingStandbyOf(c.Instances[1].Address()))
	if r := s.LastRejoin; r == nil || r.Method != "pg_rewind" {
		t.Fatalf("lastRejoin %+v, want pg_rewind", r)
	}
	logs := readLog(t, c, 0)
	if !strings.Contains(logs, `"msg":"rejoin: pg_rewind","as":"streaming_replica"`) {
		t.Error("the rewind did not run as streaming_replica")
	}
	if strings.Contains(logs, "trying the superuser") || strings.Contains(logs, "as the superuser") {
		t.Error("the rejoin fell back to the superuser")
	}
	if err := superuserLogin(ctx, c, 1, insttest.SuperuserPassword); err == nil || !strings.Contains(err.Error(), "pg_hba.conf rejects") {
		t.Errorf("a remote superuser login to the new primary: %v, want refused by pg_hba.conf", err)
	}
	if !strings.Contains(readLog(t, c, 1), "superuser password removed (NULL)") {
		t.Error("the new primary's manager did not apply the superuser's state after its promotion")
	}
}

// TestSuperuserAccessOn (real PostgreSQL, TLS on): with access on, the
// superuser's password is the projected Secret file's; a new password
// written to the file is in force without a restart (the manager and
// postmaster keep their PIDs), the old one no longer logs in; turning
// access off refuses every remote login by a reload, and on again lets the
// file's password in again.
func TestSuperuserAccessOn(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL and a kube-apiserver")
	}
	ctx := context.Background()
	c := insttest.NewCluster(t, "suon", 1)
	c.SuperuserPasswordFile = filepath.Join(c.Dir, "superuser-password")
	setPassword := func(pw string) {
		t.Helper()
		tmp := c.SuperuserPasswordFile + ".tmp"
		if err := c.WriteFileAs(tmp, []byte(pw)); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, c.SuperuserPasswordFile); err != nil {
			t.Fatal(err)
		}
	}
	setPassword("first-Pw-1")
	c.SetSuperuserAccess(true)
	c.Start(0)
	c.WaitStatus(0, bootTimeout, "primary", isPrimary)
	if err := superuserLogin(ctx, c, 0, "first-Pw-1"); err != nil {
		t.Fatalf("login with the Secret's password: %v", err)
	}
	manager, postmaster := c.ManagerPID(0), postmasterPIDOf(t, c, 0)

	waitLogin := func(what, pw string, ok func(error) bool) {
		t.Helper()
		deadline := time.Now().Add(stepTimeout)
		for {
			err := superuserLogin(ctx, c, 0, pw)
			if ok(err) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: last login: %v\n%s", what, err, c.LogTail(0, 20))
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	succeeds := func(err error) bool { return err == nil }
	refusedByHBA := func(err error) bool { return err != nil && strings.Contains(err.Error(), "pg_hba.conf rejects") }

	setPassword("second-Pw-2")
	waitLogin("the changed password", "second-Pw-2", succeeds)
	if err := superuserLogin(ctx, c, 0, "first-Pw-1"); err == nil || !strings.Contains(err.Error(), "password authentication failed") {
		t.Errorf("the old password: %v, want a failed password authentication", err)
	}
	if m, p := c.ManagerPID(0), postmasterPIDOf(t, c, 0); m != manager || p != postmaster {
		t.Errorf("restarted to apply the password: manager %d → %d, postmaster %s → %s", manager, m, postmaster, p)
	}

	c.SetSuperuserAccess(false)
	waitLogin("access turned off", "second-Pw-2", refusedByHBA)
	c.SetSuperuserAccess(true)
	waitLogin("access turned on again", "second-Pw-2", succeeds)
	if m, p := c.ManagerPID(0), postmasterPIDOf(t, c, 0); m != manager || p != postmaster {
		t.Errorf("restarted to turn access off and on: manager %d → %d, postmaster %s → %s", manager, m, postmaster, p)
	}
	if logs := readLog(t, c, 0); strings.Contains(logs, "first-Pw-1") || strings.Contains(logs, "second-Pw-2") {
		t.Error("a superuser password is in the manager's log")
	}
}

// postmasterPIDOf is the postmaster's PID of instance i (postmaster.pid).
func postmasterPIDOf(t *testing.T, c *insttest.Cluster, i int) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(c.Instances[i].PGData, "postmaster.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, _, _ := strings.Cut(string(b), "\n")
	return pid
}

// TestRejoinWithoutPgCheckpoint (real PostgreSQL 15, TLS on): the rejoin
// as on PostgreSQL 13 and 14, where streaming_replica cannot be granted
// pg_checkpoint — here revoked on the new primary after its promotion: the
// old primary's CHECKPOINT there is refused, so it waits for the new
// primary's own checkpoint on its timeline (pg_control_checkpoint) rather
// than use the superuser, and rewinds as streaming_replica.
func TestRejoinWithoutPgCheckpoint(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL and a kube-apiserver")
	}
	ctx := context.Background()
	c := insttest.NewCluster(t, "nockpt", 2)
	app := c.DSN("app", insttest.AppPassword, "app")
	c.Start(0)
	c.WaitStatus(0, bootTimeout, "primary", isPrimary)
	if err := insttest.CreateProbeTable(ctx, app); err != nil {
		t.Fatal(err)
	}
	c.Start(1)
	c.WaitStatus(1, bootTimeout, "streaming standby", isStreamingStandbyOf(c.Instances[0].Address()))

	to, _, _ := killPrimary(t, c, app, 0)
	if to != 1 {
		t.Fatalf("nockpt-%d promoted", to)
	}
	conn, err := pgx.Connect(ctx, c.SuperuserDSN(1))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `REVOKE pg_checkpoint FROM streaming_replica`); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	c.Start(0)
	s := c.WaitStatus(0, stepTimeout, "rejoined as a standby", isStreamingStandbyOf(c.Instances[1].Address()))
	if r := s.LastRejoin; r == nil || r.Method != "pg_rewind" {
		t.Fatalf("lastRejoin %+v, want pg_rewind", r)
	}
	logs := readLog(t, c, 0)
	for _, want := range []string{"CHECKPOINT as streaming_replica refused", `"msg":"rejoin: pg_rewind","as":"streaming_replica"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("the old primary's log does not say %q", want)
		}
	}
	if strings.Contains(logs, "trying the superuser") || strings.Contains(logs, "as the superuser") {
		t.Error("the rejoin fell back to the superuser")
	}
}
