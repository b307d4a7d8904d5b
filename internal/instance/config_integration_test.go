package instance_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgsync/pgsync/internal/instance"
	pc "github.com/pgsync/pgsync/internal/podcontract"
	"github.com/pgsync/pgsync/test/insttest"
	"github.com/pgsync/pgsync/test/kubeletvol"
)

// paramsVolume makes the cluster's parameters file a key of a ConfigMap
// volume laid out as the kubelet does (the managers find the revision and
// pg_hba keys next to it), and writes one version of it.
func paramsVolume(t *testing.T, c *insttest.Cluster, params, revision string, hba ...string) {
	t.Helper()
	writeParamsVolume(t, c, params, revision, hba, nil)
}

// writeParamsVolume is the one writer of the parameters volume in these
// tests, as the kubelet writes it: params, the revision, pg_hba lines and
// any other keys.
func writeParamsVolume(t *testing.T, c *insttest.Cluster, params, revision string, hba []string, extra map[string][]byte) {
	t.Helper()
	if fi, err := os.Lstat(c.ParametersFile); err == nil && fi.Mode().IsRegular() {
		if err := os.Remove(c.ParametersFile); err != nil {
			t.Fatal(err)
		}
	}
	if hba == nil {
		hba = []string{}
	}
	lines := `[` + strings.Join(quoteAll(hba), ",") + `]`
	files := map[string][]byte{filepath.Base(c.ParametersFile): []byte(params),
		pc.ConfigRevisionKey: []byte(revision), pc.HBAKey: []byte(lines)}
	for k, v := range extra {
		files[k] = v
	}
	if err := kubeletvol.Write(filepath.Dir(c.ParametersFile), files, 0o444, kubeletvol.Owner{UID: -1, GID: -1}); err != nil {
		t.Fatal(err)
	}
}

func quoteAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = fmt.Sprintf("%q", s)
	}
	return out
}

func show(t *testing.T, c *insttest.Cluster, i int, setting string) string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, c.InstanceDSN(i, "postgres", insttest.SuperuserPassword, "postgres"))
	if err != nil {
		t.Fatalf("%s: superuser over TCP to the postgres database: %v", c.Instances[i].Name, err)
	}
	defer conn.Close(ctx)
	var v string
	if err := conn.QueryRow(ctx, "SELECT current_setting($1)", setting).Scan(&v); err != nil {
		t.Fatal(err)
	}
	return v
}

func ping(ctx context.Context, dsn string) error {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	return conn.Ping(ctx)
}

func loaded(rev string) func(instance.Status) bool {
	return func(s instance.Status) bool { return s.Accepting && s.ConfigRevision == rev }
}

// TestConfigRevisionAndHBA: the managers publish the ConfigMap's config
// revision once postgres has loaded that version, and only if it loaded
// all of it; spec.postgresql.pg_hba lines reach pg_hba.conf without
// shadowing pgsync's own rules.
func TestConfigRevisionAndHBA(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL and a kube-apiserver")
	}
	c := insttest.NewCluster(t, "cfg", 2)
	ctx := context.Background()
	appDSN := c.InstanceDSN(0, "app", insttest.AppPassword, "app")
	// Lines that would lock out the manager's own session (local) and
	// every TCP connection of the application, were they first.
	paramsVolume(t, c, `{"max_connections": "50", "work_mem": "5MB"}`, "r1", "local all all reject", "host all app 0.0.0.0/0 reject")

	steps := []struct {
		name string
		f    func(t *testing.T)
	}{
		{"bootstrap under user pg_hba lines; r1 loaded", func(t *testing.T) {
			c.Start(0)
			c.WaitStatus(0, bootTimeout, "primary", isPrimary)
			c.Start(1)
			c.WaitStatus(1, bootTimeout, "streaming standby", isStreamingStandbyOf(c.Instances[0].Address()))
			for i := range c.Instances {
				c.WaitStatus(i, stepTimeout, "r1 loaded", loaded("r1"))
			}
			if err := ping(ctx, appDSN); err == nil || !strings.Contains(err.Error(), "pg_hba.conf rejects connection") {
				t.Errorf("the user line rejecting app over TCP has no effect: %v", err)
			}
			if got := show(t, c, 1, "work_mem"); got != "5MB" {
				t.Errorf("standby work_mem = %s", got)
			}
			// The standby reconnects through pg_hba.conf as it is now.
			before := c.WaitStatus(1, stepTimeout, "streaming", isStreamingStandbyOf(c.Instances[0].Address()))
			if err := syscall.Kill(before.PostmasterPID, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			c.WaitStatus(1, stepTimeout, "restarted, streaming, r1 loaded", func(s instance.Status) bool {
				return s.PostmasterPID != before.PostmasterPID && isStreamingStandbyOf(c.Instances[0].Address())(s) && s.ConfigRevision == "r1"
			})
		}},
		{"a new version: reloaded everywhere, r2 published", func(t *testing.T) {
			paramsVolume(t, c, `{"max_connections": "50", "work_mem": "9MB"}`, "r2")
			for i := range c.Instances {
				c.WaitStatus(i, stepTimeout, "r2 loaded", loaded("r2"))
				if got := show(t, c, i, "work_mem"); got != "9MB" {
					t.Errorf("%s: work_mem = %s once r2 is published", c.Instances[i].Name, got)
				}
			}
			if err := ping(ctx, appDSN); err != nil {
				t.Errorf("app still refused after its pg_hba line was removed: %v", err)
			}
		}},
		{"a value postgres refuses: no revision, the parameter listed", func(t *testing.T) {
			paramsVolume(t, c, `{"max_connections": "50", "work_mem": "lots", "maintenance_work_mem": "99MB"}`, "r3")
			for i := range c.Instances {
				// The other change of r3 is applied: postgres reloaded r3.
				c.WaitStatus(i, stepTimeout, "r3 partly applied", func(s instance.Status) bool {
					return s.Accepting && slices.Contains(s.RejectedParameters, "work_mem") && show(t, c, i, "maintenance_work_mem") == "99MB"
				})
				s := c.WaitStatus(i, stepTimeout, "a refresh after the reload", func(s instance.Status) bool { return s.Accepting })
				if s.ConfigRevision != "" {
					t.Errorf("%s: configRevision %q although postgres refused work_mem of r3", c.Instances[i].Name, s.ConfigRevision)
				}
				if got := show(t, c, i, "work_mem"); got != "9MB" {
					t.Errorf("%s: work_mem = %s, want the previous 9MB", c.Instances[i].Name, got)
				}
			}
		}},
		{"a pg_hba line postgres refuses: no revision, the line named", func(t *testing.T) {
			paramsVolume(t, c, `{"max_connections": "50", "work_mem": "10MB"}`, "r4", "host all all 0.0.0.0/0 no-such-method")
			for i := range c.Instances {
				s := c.WaitStatus(i, stepTimeout, "pg_hba line refused", func(s instance.Status) bool {
					return s.Accepting && len(s.RejectedHBA) == 1 && show(t, c, i, "work_mem") == "10MB"
				})
				if !strings.HasPrefix(s.RejectedHBA[0], "pg_hba[0]: ") || !strings.Contains(s.RejectedHBA[0], "no-such-method") {
					t.Errorf("%s: rejectedHBA %q", c.Instances[i].Name, s.RejectedHBA)
				}
				if s.ConfigRevision != "" || len(s.RejectedParameters) != 0 {
					t.Errorf("%s: configRevision %q, rejectedParameters %q", c.Instances[i].Name, s.ConfigRevision, s.RejectedParameters)
				}
			}
		}},
		{"fixed: r5 published, nothing rejected", func(t *testing.T) {
			paramsVolume(t, c, `{"max_connections": "50", "work_mem": "10MB"}`, "r5")
			for i := range c.Instances {
				s := c.WaitStatus(i, stepTimeout, "r5 loaded", loaded("r5"))
				if len(s.RejectedHBA)+len(s.RejectedParameters) != 0 {
					t.Errorf("%s: still rejected: %q %q", c.Instances[i].Name, s.RejectedHBA, s.RejectedParameters)
				}
			}
		}},
		{"a restart-only parameter is not part of the revision: r5 stays, pending restart", func(t *testing.T) {
			// As rendered: the config revision covers reload-only settings.
			paramsVolume(t, c, `{"max_connections": "50", "work_mem": "10MB", "shared_buffers": "64MB"}`, "r5")
			for i := range c.Instances {
				c.WaitStatus(i, stepTimeout, "pending restart with r5 loaded", func(s instance.Status) bool {
					return slices.Equal(s.PendingRestart, []string{"shared_buffers"}) && s.ConfigRevision == "r5"
				})
			}
			if logs := readLog(t, c, 0); !strings.Contains(logs, `"msg":"postgres loaded the configuration","configRevision":"r5"`) {
				t.Error("no log line for the loaded revision")
			}
		}},
	}
	for _, s := range steps {
		if !t.Run(s.name, s.f) {
			for i := range c.Instances {
				t.Logf("%s log tail:\n%s", c.Instances[i].Name, c.LogTail(i, 30))
			}
			return
		}
	}
}

// TestSwitchoverDelay: a primary whose fast shutdown outlasts
// --switchover-delay is stopped immediately, keeps the Lease (there is no
// final LSN), restarts as primary losing nothing, says so, and tries again
// after the hold-off — which then succeeds.
func TestSwitchoverDelay(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL and a kube-apiserver")
	}
	c := insttest.NewCluster(t, "swd", 2)
	ctx := context.Background()
	// The harness passes its own flags; a wrapper adds the one under test.
	wrapper := filepath.Join(c.Dir, "pgsync-switchover-delay")
	if err := os.WriteFile(wrapper, []byte("#!/bin/sh\nexec "+c.Bin+` "$@" --switchover-delay=2s`+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	c.Bin = wrapper
	c.Start(0)
	c.WaitStatus(0, bootTimeout, "primary", isPrimary)
	c.Start(1)
	c.WaitStatus(1, bootTimeout, "streaming standby", isStreamingStandbyOf(c.Instances[0].Address()))
	if !strings.Contains(readLog(t, c, 0), `"switchoverDelay":"2s"`) {
		t.Fatalf("the manager did not take --switchover-delay=2s:\n%s", c.LogTail(0, 20))
	}
	app := c.InstanceDSN(0, "app", insttest.AppPassword, "app")
	if err := insttest.CreateProbeTable(ctx, app); err != nil {
		t.Fatal(err)
	}
	for id := int64(1); id <= 10; id++ {
		if err := insertOne(ctx, app, id); err != nil {
			t.Fatal(err)
		}
	}

	// A backend that cannot act on the shutdown request (SIGSTOP stands in
	// for one stuck in uninterruptible I/O): the fast shutdown waits for
	// it for ever.
	stuck, err := pgx.Connect(ctx, app)
	if err != nil {
		t.Fatal(err)
	}
	defer stuck.Close(ctx)
	var pid int
	if err := stuck.QueryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer syscall.Kill(pid, syscall.SIGCONT)
	before, _ := c.Status(0)

	if err := c.SetTarget(ctx, c.Instances[1].Name); err != nil {
		t.Fatal(err)
	}
	failed := c.WaitStatus(0, stepTimeout, "the failed switchover reported", func(s instance.Status) bool {
		return strings.Contains(s.LastError, "switchover to swd-1 failed")
	})
	if !strings.Contains(failed.LastError, "stopped immediately") || !strings.Contains(failed.LastError, "no final LSN") {
		t.Errorf("lastError does not say why: %q", failed.LastError)
	}
	after := c.WaitStatus(0, stepTimeout, "primary again, the switchover held off", func(s instance.Status) bool {
		return isPrimary(s) && s.PostgresStarts > before.PostgresStarts && strings.Contains(s.ActionReason, "switchover to swd-1 failed")
	})
	if after.PostgresCrashes != before.PostgresCrashes {
		t.Errorf("crashes %d -> %d: the immediate stop was requested, not a crash", before.PostgresCrashes, after.PostgresCrashes)
	}
	if !strings.Contains(readLog(t, c, 0), "did not shut down within the switchover delay: immediate shutdown") {
		t.Error("no log line for the immediate shutdown")
	}
	l, err := c.Lease(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if l.Spec.HolderIdentity == nil || *l.Spec.HolderIdentity != c.Instances[0].Name {
		t.Errorf("Lease holder %v, want %s", l.Spec.HolderIdentity, c.Instances[0].Name)
	}
	if v, ok := l.Annotations[pc.AnnFinalLSN]; ok {
		t.Errorf("a final LSN %s was published after an immediate stop", v)
	}
	// The target follows the old primary again — unless the hold-off
	// (max of the 2 s delay and the Lease duration) has passed first and
	// the second attempt below promoted it already: on a loaded machine
	// the old primary's restart can take longer than the hold-off.
	streams := isStreamingStandbyOf(c.Instances[0].Address())
	c.WaitStatus(1, stepTimeout, "the target streams from the old primary, or the retry promoted it", func(s instance.Status) bool {
		return streams(s) || isPrimary(s)
	})
	acked := make([]insttest.Ack, 0, 10)
	for id := int64(1); id <= 10; id++ {
		acked = append(acked, insttest.Ack{ID: id, At: time.Now()})
	}
	if missing, err := insttest.Missing(ctx, app, acked); err != nil || len(missing) > 0 {
		t.Errorf("after the immediate stop: missing %v (%v)", missing, err)
	}

	// The stuck backend died with the immediate stop; after the hold-off
	// the switchover is tried again and goes through.
	c.WaitStatus(1, stepTimeout, "promoted on the second attempt", isPrimary)
	if missing, err := insttest.Missing(ctx, c.InstanceDSN(1, "app", insttest.AppPassword, "app"), acked); err != nil || len(missing) > 0 {
		t.Errorf("on the new primary: missing %v (%v)", missing, err)
	}
	c.WaitStatus(0, stepTimeout, "old primary follows", isStreamingStandbyOf(c.Instances[1].Address()))
}
