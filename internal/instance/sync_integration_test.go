package instance_test

import (
	"context"
	"encoding/json"
	"errors"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgsync/pgsync/internal/instance"
	pc "github.com/pgsync/pgsync/internal/podcontract"
	"github.com/pgsync/pgsync/test/insttest"
)

// replicationVolume writes one version of the params ConfigMap volume
// with rep as its replication key.
func replicationVolume(t *testing.T, c *insttest.Cluster, rep pc.Replication, revision string) {
	t.Helper()
	replicationParamsVolume(t, c, `{"max_connections": "50"}`, rep, revision)
}

// replicationParamsVolume writes one version of the params ConfigMap volume: the
// parameters (JSON), rep as its replication key, no pg_hba lines.
func replicationParamsVolume(t *testing.T, c *insttest.Cluster, params string, rep pc.Replication, revision string) {
	t.Helper()
	raw, err := json.Marshal(rep)
	if err != nil {
		t.Fatal(err)
	}
	writeParamsVolume(t, c, params, revision, nil, map[string][]byte{pc.ReplicationKey: raw})
}

// waitSetting waits until instance i shows setting = want.
func waitSetting(t *testing.T, c *insttest.Cluster, i int, setting, want string) {
	t.Helper()
	deadline := time.Now().Add(stepTimeout)
	got := ""
	for time.Now().Before(deadline) {
		if got = show(t, c, i, setting); got == want {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s: %s = %q, want %q", c.Instances[i].Name, setting, got, want)
}

// commitWithin runs one write on the primary as the application and
// reports whether its commit returned within d.
func commitWithin(t *testing.T, c *insttest.Cluster, d time.Duration) bool {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, c.InstanceDSN(0, "postgres", insttest.SuperuserPassword, "postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	wctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	_, err = conn.Exec(wctx, `CREATE TABLE IF NOT EXISTS sync_probe (at timestamptz); INSERT INTO sync_probe VALUES (now())`)
	switch {
	case err == nil:
		return true
	case isCancel(err):
		return false
	}
	t.Fatalf("insert: %v", err)
	return false
}

// isCancel: the statement was cancelled (query_canceled) or timed out.
func isCancel(err error) bool {
	var pe *pgconn.PgError
	return errors.Is(err, context.DeadlineExceeded) || errors.As(err, &pe) && pe.Code == "57014"
}

// TestSynchronousStandbyNames: the primary's manager writes
// synchronous_standby_names from the replication settings and the
// standbys that stream, and rewrites it as they come and go; required
// durability blocks commits without a standby (the bootstrap itself does
// not wait), preferred and legacy lower the number and never block.
func TestSynchronousStandbyNames(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL and a kube-apiserver")
	}
	c := insttest.NewCluster(t, "sync", 3)
	names := []string{"sync-0", "sync-1", "sync-2"}
	required := pc.Replication{Instances: names, Synchronous: &pc.Synchronous{Method: "any", Number: 1, DataDurability: "required"}}
	replicationVolume(t, c, required, "s1")
	addr0 := c.Instances[0].Address()

	c.Start(0)
	c.WaitStatus(0, bootTimeout, "primary", isPrimary)
	waitSetting(t, c, 0, "synchronous_standby_names", `ANY 1 ("sync-1","sync-2","sync-0")`)
	if commitWithin(t, c, 2*time.Second) {
		t.Fatal("a commit returned with required durability and no standby")
	}

	c.Start(1)
	c.WaitStatus(1, bootTimeout, "streaming standby", isStreamingStandbyOf(addr0))
	if !commitWithin(t, c, 10*time.Second) {
		t.Fatal("a commit waits although sync-1 streams")
	}
	waitSetting(t, c, 0, "synchronous_standby_names", `ANY 1 ("sync-1","sync-2","sync-0")`)
	c.Start(2)
	c.WaitStatus(2, bootTimeout, "streaming standby", isStreamingStandbyOf(addr0))

	// sync-1 gone: it moves behind the streaming sync-2.
	c.Stop(1, syscall.SIGINT)
	waitSetting(t, c, 0, "synchronous_standby_names", `ANY 1 ("sync-2","sync-1","sync-0")`)
	if !commitWithin(t, c, 10*time.Second) {
		t.Fatal("a commit waits although sync-2 streams")
	}

	// Preferred: only what streams, the number lowered to it.
	pref := required
	pref.Synchronous = &pc.Synchronous{Method: "any", Number: 2, DataDurability: "preferred"}
	replicationVolume(t, c, pref, "s2")
	waitSetting(t, c, 0, "synchronous_standby_names", `ANY 1 ("sync-2")`)
	c.WaitStatus(0, stepTimeout, "s2 loaded", loaded("s2"))
	c.Start(1)
	c.WaitStatus(1, bootTimeout, "streaming standby", isStreamingStandbyOf(addr0))
	waitSetting(t, c, 0, "synchronous_standby_names", `ANY 2 ("sync-1","sync-2")`)
	c.Stop(1, syscall.SIGINT)
	c.Stop(2, syscall.SIGINT)
	waitSetting(t, c, 0, "synchronous_standby_names", "")
	if !commitWithin(t, c, 10*time.Second) {
		t.Fatal("preferred durability blocks a commit without standbys")
	}

	// Legacy maxSyncReplicas 2, minSyncReplicas 1.
	legacy := required
	legacy.Synchronous = &pc.Synchronous{Legacy: true, Method: "any", Number: 2, Min: 1}
	replicationVolume(t, c, legacy, "s3")
	c.Start(2)
	c.WaitStatus(2, bootTimeout, "streaming standby", isStreamingStandbyOf(addr0))
	waitSetting(t, c, 0, "synchronous_standby_names", `ANY 1 ("sync-2")`)

	// Off again.
	replicationVolume(t, c, pc.Replication{Instances: names}, "s4")
	waitSetting(t, c, 0, "synchronous_standby_names", "")
	c.WaitStatus(0, stepTimeout, "s4 loaded", func(s instance.Status) bool { return s.ConfigRevision == "s4" })
}
