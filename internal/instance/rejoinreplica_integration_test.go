package instance_test

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pgsync/pgsync/test/insttest"
)

// TestRejoinAsStreamingReplica: with the superuser's remote logins
// refused by the user's pg_hba (real PostgreSQL, TLS on), a failed-over
// primary still rejoins with pg_rewind: its timeline check, the CHECKPOINT
// and pg_rewind connect as streaming_replica, which the primary granted
// what they use.
func TestRejoinAsStreamingReplica(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL and a kube-apiserver")
	}
	ctx := context.Background()
	c := insttest.NewCluster(t, "rr", 2)
	paramsVolume(t, c, `{"max_connections": "50", "log_connections": "on"}`, "h1",
		"hostssl all postgres 0.0.0.0/0 reject", "hostssl replication postgres 0.0.0.0/0 reject")
	app := c.DSN("app", insttest.AppPassword, "app")
	c.Start(0)
	c.WaitStatus(0, bootTimeout, "primary", isPrimary)
	if err := insttest.CreateProbeTable(ctx, app); err != nil {
		t.Fatal(err)
	}
	c.Start(1)
	c.WaitStatus(1, bootTimeout, "streaming standby", isStreamingStandbyOf(c.Instances[0].Address()))

	superuser := func(i int) error {
		conn, err := pgx.Connect(ctx, c.InstanceDSN(i, "postgres", insttest.SuperuserPassword, "postgres"))
		if err == nil {
			conn.Close(ctx)
		}
		return err
	}
	if err := superuser(0); err == nil || !strings.Contains(err.Error(), "pg_hba.conf rejects") {
		t.Fatalf("a remote superuser login to the primary: %v, want refused by pg_hba.conf", err)
	}

	to, _, _ := killPrimary(t, c, app, 0)
	if to != 1 {
		t.Fatalf("rr-%d promoted", to)
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
	if err := superuser(1); err == nil || !strings.Contains(err.Error(), "pg_hba.conf rejects") {
		t.Errorf("a remote superuser login to the new primary: %v, want refused by pg_hba.conf", err)
	}
}
