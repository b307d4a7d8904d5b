package instance_test

import (
	"bytes"
	"context"
	"debug/elf"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pgsync/pgsync/internal/instance"
	"github.com/pgsync/pgsync/internal/instance/reaper"
	"github.com/pgsync/pgsync/test/insttest"
	"github.com/pgsync/pgsync/test/kubeenv"
)

func TestMain(m *testing.M) {
	code := kubeenv.Main(m)
	insttest.RemoveBinary()
	os.Exit(code)
}

const (
	bootTimeout = 90 * time.Second
	stepTimeout = 60 * time.Second
)

func isPrimary(s instance.Status) bool {
	return s.Role == "primary" && s.Accepting && s.LeaseHolder == s.Instance && (s.Action == "wait" || s.Action == "renew")
}

func isStreamingStandbyOf(addr string) func(instance.Status) bool {
	return func(s instance.Status) bool {
		return s.Role == "standby" && s.Streaming && s.Upstream == addr
	}
}

// TestInstanceManagers runs three instance managers (real PostgreSQL, a
// real kube-apiserver) through bootstrap, switchovers under write load,
// crashes and a Lease that can no longer be renewed. The steps share one
// cluster and run in order; a failed step stops the rest.
func TestInstanceManagers(t *testing.T) {
	if testing.Short() {
		t.Skip("starts PostgreSQL and a kube-apiserver")
	}
	c := insttest.NewCluster(t, "db", 3)
	ctx := context.Background()
	app := c.DSN("app", insttest.AppPassword, "app")

	steps := []struct {
		name string
		f    func(t *testing.T)
	}{
		{"bootstrap primary and two standbys", func(t *testing.T) {
			c.Start(0)
			p := c.WaitStatus(0, bootTimeout, "primary", isPrimary)
			if p.Timeline != 1 || p.ServerVersion == "" {
				t.Errorf("primary status: %+v", p)
			}
			c.Start(1)
			c.Start(2)
			for i := 1; i <= 2; i++ {
				c.WaitStatus(i, bootTimeout, "streaming standby", isStreamingStandbyOf(c.Instances[0].Address()))
				if !c.Ready(i) {
					t.Errorf("%s: /readyz not ok while streaming", c.Instances[i].Name)
				}
			}
			checkRouting(t, c, 0)
			// initdb settings and the credentials path.
			conn, err := pgx.Connect(ctx, c.InstanceDSN(0, "postgres", insttest.SuperuserPassword, "postgres"))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(ctx)
			for setting, want := range map[string]string{"data_checksums": "on", "password_encryption": "scram-sha-256", "max_connections": "50"} {
				var got string
				if err := conn.QueryRow(ctx, "SELECT current_setting($1)", setting).Scan(&got); err != nil || got != want {
					t.Errorf("%s = %q (%v), want %q", setting, got, err, want)
				}
			}
			var verifier string
			if err := conn.QueryRow(ctx, `SELECT rolpassword FROM pg_authid WHERE rolname = 'streaming_replica'`).Scan(&verifier); err != nil || !strings.HasPrefix(verifier, "SCRAM-SHA-256$4096:") {
				t.Errorf("replication role password stored as %q (%v)", verifier[:min(len(verifier), 14)], err)
			}
			if err := insttest.CreateProbeTable(ctx, app); err != nil {
				t.Fatalf("app user cannot write through the multi-host DSN: %v", err)
			}
			checkNoSecrets(t, c)
			checkJSONLogs(t, c, 0)
			checkReadOnlyRoot(t, c)
			checkStatic(t, c.Bin)
		}},
		{"switchover under write load loses no commit", func(t *testing.T) {
			switchover(t, c, app, 0, 1, 1_000_000)
		}},
		{"switchover back", func(t *testing.T) {
			switchover(t, c, app, 1, 0, 2_000_000)
		}},
		{"a switchover to a target that does not stream is refused", func(t *testing.T) {
			if err := c.SetTarget(ctx, "db-9"); err != nil {
				t.Fatal(err)
			}
			s := c.WaitStatus(0, stepTimeout, "refusal", func(s instance.Status) bool {
				return strings.Contains(s.LastError, "switchover to db-9 refused")
			})
			if s.Role != "primary" || !s.Accepting {
				t.Errorf("the primary stopped for a target that cannot take over: %+v", s)
			}
			if err := insertOne(ctx, c.InstanceDSN(0, "app", insttest.AppPassword, "app"), 2_999_999); err != nil {
				t.Errorf("writes refused while the switchover waits: %v", err)
			}
			if err := c.SetTarget(ctx, c.Instances[0].Name); err != nil {
				t.Fatal(err)
			}
			c.WaitStatus(0, stepTimeout, "primary", isPrimary)
		}},
		{"parameters: reload, and restart-only ones reported as pending", func(t *testing.T) {
			if err := os.WriteFile(c.ParametersFile, []byte(`{"max_connections": "50", "work_mem": "7MB", "shared_buffers": "64MB"}`), 0o644); err != nil {
				t.Fatal(err)
			}
			for i := range c.Instances {
				c.WaitStatus(i, stepTimeout, "shared_buffers pending restart", func(s instance.Status) bool {
					return len(s.PendingRestart) == 1 && s.PendingRestart[0] == "shared_buffers"
				})
			}
			conn, err := pgx.Connect(ctx, c.InstanceDSN(2, "postgres", insttest.SuperuserPassword, "postgres"))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(ctx)
			var wm string
			if err := conn.QueryRow(ctx, "SHOW work_mem").Scan(&wm); err != nil || wm != "7MB" {
				t.Errorf("work_mem after reload = %q (%v), want 7MB", wm, err)
			}
		}},
		{"SIGHUP to the manager reloads postgres", func(t *testing.T) {
			// The manager logs the forwarding; postgres must log the
			// reload after that line.
			const forwarded, reloaded = `"msg":"reloading postgres"`, "received SIGHUP, reloading configuration files"
			if strings.Contains(readLog(t, c, 1), forwarded) {
				t.Fatal("a SIGHUP was forwarded before the test sent one")
			}
			if err := syscall.Kill(c.ManagerPID(1), syscall.SIGHUP); err != nil {
				t.Fatal(err)
			}
			reloadedAfter := func() bool {
				l := readLog(t, c, 1)
				i := strings.Index(l, forwarded)
				return i >= 0 && strings.Contains(l[i:], reloaded)
			}
			deadline := time.Now().Add(stepTimeout)
			for !reloadedAfter() {
				if time.Now().After(deadline) {
					t.Fatalf("postgres did not reload after the manager got SIGHUP:\n%s", c.LogTail(1, 20))
				}
				time.Sleep(50 * time.Millisecond)
			}
			c.WaitStatus(1, stepTimeout, "still streaming", isStreamingStandbyOf(c.Instances[0].Address()))
		}},
		{"kill -9 of a standby's postmaster restarts it", func(t *testing.T) {
			before := c.WaitStatus(2, stepTimeout, "streaming", isStreamingStandbyOf(c.Instances[0].Address()))
			if err := syscall.Kill(before.PostmasterPID, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			after := c.WaitStatus(2, stepTimeout, "restarted and streaming", func(s instance.Status) bool {
				return s.PostmasterPID != 0 && s.PostmasterPID != before.PostmasterPID && isStreamingStandbyOf(c.Instances[0].Address())(s)
			})
			if after.PostgresCrashes != before.PostgresCrashes+1 {
				t.Errorf("crashes %d -> %d", before.PostgresCrashes, after.PostgresCrashes)
			}
		}},
		{"kill -9 of the primary's postmaster restarts it in place", func(t *testing.T) {
			before := c.WaitStatus(0, stepTimeout, "primary", isPrimary)
			w := insttest.StartWriter(app, 3_000_000)
			defer w.Stop()
			if err := w.WaitAcks(50, stepTimeout); err != nil {
				t.Fatal(err)
			}
			if err := syscall.Kill(before.PostmasterPID, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			after := c.WaitStatus(0, stepTimeout, "restarted as primary", func(s instance.Status) bool {
				return s.PostmasterPID != before.PostmasterPID && isPrimary(s)
			})
			if err := w.WaitAcks(50, stepTimeout); err != nil {
				t.Fatalf("no writes after the restart: %v", err)
			}
			acks := w.Stop()
			if after.Timeline != before.Timeline {
				t.Errorf("timeline %d -> %d: a crash restart must not fail over", before.Timeline, after.Timeline)
			}
			l, err := c.Lease(ctx)
			if err != nil || *l.Spec.HolderIdentity != c.Instances[0].Name {
				t.Errorf("Lease holder changed: %v %v", l.Spec.HolderIdentity, err)
			}
			if missing, err := insttest.Missing(ctx, c.InstanceDSN(0, "app", insttest.AppPassword, "app"), acks); err != nil || len(missing) > 0 {
				t.Errorf("after crash recovery: %d acknowledged commits missing (%v)", len(missing), err)
			}
			// The killed postmaster's backends were orphaned to the manager
			// (subreaper; PID 1 in a pod) and must have been reaped.
			var z []int
			for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
				if z = reaper.ZombieChildren(c.ManagerPID(0)); len(z) == 0 {
					break
				}
			}
			if len(z) > 0 {
				t.Errorf("zombies left under the manager: %v", z)
			}
			if logs, _ := os.ReadFile(c.Instances[0].LogFile); !strings.Contains(string(logs), `"msg":"reaped orphan"`) {
				t.Error("the manager reaped no orphan: the killed postmaster's children were not re-parented to it")
			}
		}},
		{"SIGTERM: smart shutdown, the manager exits, a new manager rejoins", func(t *testing.T) {
			c.WaitStatus(2, stepTimeout, "streaming", isStreamingStandbyOf(c.Instances[0].Address()))
			c.Stop(2, syscall.SIGTERM)
			out, err := exec.Command(string(c.PGBin.Path("pg_controldata")), "-D", c.Instances[2].PGData).Output()
			if err != nil || !strings.Contains(string(out), "shut down in recovery") {
				t.Errorf("standby not cleanly shut down: %v\n%s", err, out)
			}
			if strings.Contains(c.LogTail(2, 30), "smart shutdown did not finish") {
				t.Error("an idle standby needed the fast shutdown: the manager's own sessions kept the smart shutdown waiting")
			}
			c.Start(2)
			c.WaitStatus(2, stepTimeout, "streaming again", isStreamingStandbyOf(c.Instances[0].Address()))

			// A client session keeps a smart shutdown waiting: after
			// --stop-delay the manager escalates to a fast shutdown.
			conn, err := pgx.Connect(ctx, c.InstanceDSN(2, "app", insttest.AppPassword, "app"))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(ctx)
			c.Stop(2, syscall.SIGTERM)
			if !strings.Contains(c.LogTail(2, 40), "smart shutdown did not finish: fast shutdown") {
				t.Errorf("no escalation to a fast shutdown with a session open:\n%s", c.LogTail(2, 20))
			}
			out, err = exec.Command(string(c.PGBin.Path("pg_controldata")), "-D", c.Instances[2].PGData).Output()
			if err != nil || !strings.Contains(string(out), "shut down in recovery") {
				t.Errorf("standby not cleanly shut down after the escalation: %v", err)
			}
			c.Start(2)
			c.WaitStatus(2, stepTimeout, "streaming again", isStreamingStandbyOf(c.Instances[0].Address()))
		}},
		{"the preStop hook: postgres stops cleanly, the hook returns, the manager waits for the stop signal", func(t *testing.T) {
			c.WaitStatus(2, stepTimeout, "streaming", isStreamingStandbyOf(c.Instances[0].Address()))
			pid := c.ManagerPID(2)
			out, err := exec.Command(c.Bin, "instance", "stop", "--pid", strconv.Itoa(pid), "--run-dir", c.Instances[2].RunDir, "--timeout", "1m").CombinedOutput()
			if err != nil {
				t.Fatalf("pgsync instance stop: %v\n%s", err, out)
			}
			out, err = exec.Command(string(c.PGBin.Path("pg_controldata")), "-D", c.Instances[2].PGData).Output()
			if err != nil || !strings.Contains(string(out), "shut down in recovery") {
				t.Errorf("the hook returned before postgres shut down cleanly: %v\n%s", err, out)
			}
			if err := syscall.Kill(pid, 0); err != nil {
				t.Errorf("the manager exited during the hook (the kubelet would report a failed hook): %v", err)
			}
			c.Stop(2, syscall.SIGINT) // the container's stop signal: it exits now
			c.Start(2)
			c.WaitStatus(2, stepTimeout, "streaming again", isStreamingStandbyOf(c.Instances[0].Address()))
		}},
		{"SIGQUIT: immediate shutdown, then the standby recovers and rejoins", func(t *testing.T) {
			c.WaitStatus(2, stepTimeout, "streaming", isStreamingStandbyOf(c.Instances[0].Address()))
			c.Stop(2, syscall.SIGQUIT)
			if !strings.Contains(c.LogTail(2, 20), `"mode":"immediate"`) {
				t.Errorf("no immediate shutdown:\n%s", c.LogTail(2, 20))
			}
			out, err := exec.Command(string(c.PGBin.Path("pg_controldata")), "-D", c.Instances[2].PGData).Output()
			if err != nil || strings.Contains(string(out), "shut down in recovery") {
				t.Errorf("an immediate shutdown left a cleanly shut down cluster (%v)", err)
			}
			c.Start(2)
			c.WaitStatus(2, stepTimeout, "streaming again", isStreamingStandbyOf(c.Instances[0].Address()))
		}},
		{"SIGTERM to the primary: the smart shutdown ends before the Lease expires", func(t *testing.T) {
			// A stop delay far beyond the Lease: open sessions must not
			// keep committing after the fencing moment.
			c.Stop(0, syscall.SIGINT)
			c.StopDelay = 3 * c.LeaseDuration
			defer func() { c.StopDelay = 2 * time.Second }()
			c.Start(0)
			c.WaitStatus(0, stepTimeout, "primary", isPrimary)
			conn, err := pgx.Connect(ctx, c.InstanceDSN(0, "app", insttest.AppPassword, "app"))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(ctx)
			stopped := make(chan struct{})
			go func() { c.Stop(0, syscall.SIGTERM); close(stopped) }()
			var stoppedAt time.Time
			deadline := time.Now().Add(3 * c.LeaseDuration)
			for id := int64(7_000_000); time.Now().Before(deadline); id++ {
				ictx, cancel := context.WithTimeout(ctx, 2*time.Second)
				_, err := conn.Exec(ictx, `INSERT INTO probe (id) VALUES ($1)`, id)
				cancel()
				if err != nil {
					stoppedAt = time.Now()
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			<-stopped
			l, err := c.Lease(ctx)
			if err != nil {
				t.Fatal(err)
			}
			expiry := l.Spec.RenewTime.Add(time.Duration(*l.Spec.LeaseDurationSeconds) * time.Second)
			switch {
			case stoppedAt.IsZero():
				t.Errorf("the open session kept committing for %s after SIGTERM (Lease %s)", 3*c.LeaseDuration, c.LeaseDuration)
			case !stoppedAt.Before(expiry):
				t.Errorf("the open session committed until %s, the Lease expired at %s", stoppedAt.Format(time.RFC3339Nano), expiry.Format(time.RFC3339Nano))
			default:
				t.Logf("open session refused %s before the Lease's expiry", expiry.Sub(stoppedAt))
			}
			if logs := c.LogTail(0, 40); !strings.Contains(logs, "smart shutdown of the primary limited by the Lease") {
				t.Errorf("no Lease limit on the smart shutdown:\n%s", logs)
			}
			// With the primary gone the standbys accept connections but
			// do not stream: not ready.
			c.WaitStatus(1, stepTimeout, "standby not streaming", func(s instance.Status) bool { return s.Role == "standby" && !s.Streaming })
			if c.Ready(1) {
				t.Error("/readyz ok on a standby that does not stream")
			}
			c.StopDelay = 2 * time.Second
			c.Start(0)
			// db-0 was down for most of a Lease duration: a standby may
			// have taken over (failover) before it came back. The steps
			// below want db-0 as primary: a switchover brings it back.
			p := primaryIndex(t, c)
			if p != 0 {
				t.Logf("%s took over while db-0 was down; switching back", c.Instances[p].Name)
				c.WaitStatus(0, stepTimeout, "db-0 streams", isStreamingStandbyOf(c.Instances[p].Address()))
				if err := c.SetTarget(ctx, c.Instances[0].Name); err != nil {
					t.Fatal(err)
				}
			}
			c.WaitStatus(0, stepTimeout, "primary again", isPrimary)
			for i := 1; i <= 2; i++ {
				c.WaitStatus(i, stepTimeout, "streaming", isStreamingStandbyOf(c.Instances[0].Address()))
			}
		}},
		{"a standby whose timeline diverged is rewound before it follows", func(t *testing.T) {
			c.Stop(2, syscall.SIGINT)
			// Promote it by hand and write on its own timeline.
			raw := c.StartRaw(2)
			var conn *pgx.Conn
			deadline := time.Now().Add(stepTimeout)
			for {
				var err error
				if conn, err = pgx.Connect(ctx, c.SuperuserDSN(2)); err == nil {
					break
				}
				if time.Now().After(deadline) {
					raw.StopFast()
					t.Fatal(err)
				}
				time.Sleep(50 * time.Millisecond)
			}
			if _, err := conn.Exec(ctx, "SELECT pg_promote(wait => true)"); err != nil {
				t.Fatal(err)
			}
			conn.Close(ctx)
			if err := insertOne(ctx, c.InstanceDSN(2, "app", insttest.AppPassword, "app"), 5_000_000); err != nil {
				t.Fatal(err)
			}
			raw.StopFast()
			// Its manager sees the Lease held by db-0 and must rewind.
			c.Start(2)
			c.WaitStatus(2, stepTimeout, "rewound and streaming", isStreamingStandbyOf(c.Instances[0].Address()))
			b, _ := os.ReadFile(c.Instances[2].LogFile)
			if !strings.Contains(string(b), "timelines diverged: running pg_rewind") {
				t.Error("no pg_rewind in the log")
			}
			conn, err := pgx.Connect(ctx, c.InstanceDSN(2, "app", insttest.AppPassword, "app"))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close(ctx)
			var n int
			if err := conn.QueryRow(ctx, "SELECT count(*) FROM probe WHERE id = 5000000").Scan(&n); err != nil || n != 0 {
				t.Errorf("the diverged write survived the rewind: count %d (%v)", n, err)
			}
		}},
		{"a primary that cannot renew its Lease stops taking writes before it expires", func(t *testing.T) {
			fencing(t, c, 4_000_000, func() { c.Unbind(ctx) }, func() { c.Bind(ctx) })
		}},
		{"a primary whose API requests hang (partition) stops taking writes before its Lease expires", func(t *testing.T) {
			fencing(t, c, 6_000_000, c.CutAPI, c.RestoreAPI)
		}},
		{"a holder that stopped before promoting starts in recovery and promotes", func(t *testing.T) {
			before := c.WaitStatus(0, stepTimeout, "primary", isPrimary)
			c.WaitStatus(1, stepTimeout, "streaming", isStreamingStandbyOf(c.Instances[0].Address()))
			// The primary stops first (its standbys receive everything),
			// then db-1; the Lease then says db-1 took it over, as if its
			// manager had died right after the acquisition.
			c.Stop(0, syscall.SIGINT)
			c.Stop(1, syscall.SIGINT)
			l, err := c.Lease(ctx)
			if err != nil {
				t.Fatal(err)
			}
			name := c.Instances[1].Name
			l.Spec.HolderIdentity = &name
			l.Annotations["pgsync.io/target-primary"] = name
			delete(l.Annotations, "pgsync.io/primary-address")
			if _, err := c.Admin.CoordinationV1().Leases(c.Namespace).Update(ctx, l, metav1.UpdateOptions{}); err != nil {
				t.Fatal(err)
			}
			c.Start(1)
			after := c.WaitStatus(1, stepTimeout, "primary", isPrimary)
			if after.Timeline != before.Timeline+1 {
				t.Errorf("timeline %d -> %d: the standby must be promoted, not restarted as a primary on the old timeline", before.Timeline, after.Timeline)
			}
			c.Start(0)
			c.WaitStatus(0, stepTimeout, "old primary follows", isStreamingStandbyOf(c.Instances[1].Address()))
			c.WaitStatus(2, stepTimeout, "bystander follows", isStreamingStandbyOf(c.Instances[1].Address()))
			checkRouting(t, c, 1)
		}},
		{"instance bootstrap --to copies the static binary for the init container", func(t *testing.T) {
			dir := t.TempDir()
			out, err := exec.Command(c.Bin, "instance", "bootstrap", "--to", dir).Output()
			if err != nil {
				t.Fatalf("bootstrap --to: %v", err)
			}
			dst := strings.TrimSpace(string(out))
			if dst != filepath.Join(dir, "pgsync") {
				t.Errorf("installed at %q", dst)
			}
			want, _ := os.ReadFile(c.Bin)
			got, err := os.ReadFile(dst)
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("the copy differs from the binary (%v)", err)
			}
			if fi, err := os.Stat(dst); err != nil || fi.Mode().Perm() != 0o755 {
				t.Errorf("copy mode: %v %v", fi.Mode(), err)
			}
			checkStatic(t, dst)
			help, err := exec.Command(dst, "instance", "run", "--help").Output()
			if err != nil || !strings.Contains(string(help), "--stop-delay") {
				t.Errorf("the copy does not run: %v\n%s", err, help)
			}
			if err := exec.Command(c.Bin, "instance", "bootstrap").Run(); err == nil {
				t.Error("bootstrap without --to succeeded")
			}
		}},
		{"no secrets in any response or log after all of the above", func(t *testing.T) {
			checkNoSecrets(t, c)
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

// fencing cuts the primary (instance 0) off from renewing its Lease, checks
// that it refuses writes before the Lease's expiry and says why, then
// restores and checks that it is a writable primary again.
func fencing(t *testing.T, c *insttest.Cluster, firstID int64, cut, restore func()) {
	ctx := context.Background()
	c.WaitStatus(0, stepTimeout, "primary", isPrimary)
	primary := c.InstanceDSN(0, "app", insttest.AppPassword, "app")
	cut()
	restored := false
	defer func() {
		if !restored {
			restore()
		}
	}()
	// Write directly to the primary until it refuses.
	var stoppedAt time.Time
	deadline := time.Now().Add(3 * c.LeaseDuration)
	id := firstID
	for ; time.Now().Before(deadline); id++ {
		if err := insertOne(ctx, primary, id); err != nil {
			stoppedAt = time.Now()
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if stoppedAt.IsZero() {
		t.Fatalf("the primary kept taking writes for %s without renewing its Lease", 3*c.LeaseDuration)
	}
	// The admin client does not go through the cut: this is the Lease
	// as others see it.
	l, err := c.Lease(ctx)
	if err != nil {
		t.Fatal(err)
	}
	expiry := l.Spec.RenewTime.Add(time.Duration(*l.Spec.LeaseDurationSeconds) * time.Second)
	if !stoppedAt.Before(expiry) {
		t.Errorf("writes stopped at %s, after the Lease expired at %s", stoppedAt.Format(time.RFC3339Nano), expiry.Format(time.RFC3339Nano))
	}
	t.Logf("writes refused %s after the last renewal, %s before the Lease's expiry", stoppedAt.Sub(l.Spec.RenewTime.Time), expiry.Sub(stoppedAt))
	s := c.WaitStatus(0, stepTimeout, "fenced", func(s instance.Status) bool { return s.Role == "fenced" })
	if !strings.Contains(s.LastError, "renew") {
		t.Errorf("last error does not say why: %q", s.LastError)
	}
	restore()
	restored = true
	c.WaitStatus(0, stepTimeout, "primary again after the Lease could be renewed", isPrimary)
	if err := insertOne(ctx, primary, id+1); err != nil {
		t.Errorf("no writes after the renewal: %v", err)
	}
}

func insertOne(ctx context.Context, dsn string, id int64) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer c.Close(context.Background())
	_, err = c.Exec(ctx, `INSERT INTO probe (id) VALUES ($1)`, id)
	return err
}

// switchover moves the primary from → to while the writer runs and checks
// invariant 3 (no acknowledged commit lost) and the rejoin.
func switchover(t *testing.T, c *insttest.Cluster, dsn string, from, to int, firstID int64) {
	ctx := context.Background()
	c.WaitStatus(from, stepTimeout, "primary", isPrimary)
	c.WaitStatus(to, stepTimeout, "streaming", isStreamingStandbyOf(c.Instances[from].Address()))
	const rewind = "timelines diverged: running pg_rewind"
	rewindsBefore := strings.Count(readLog(t, c, from), rewind)
	w := insttest.StartWriter(dsn, firstID)
	defer w.Stop()
	if err := w.WaitAcks(100, stepTimeout); err != nil {
		t.Fatal(err)
	}
	t0 := time.Now()
	if err := c.SetTarget(ctx, c.Instances[to].Name); err != nil {
		t.Fatal(err)
	}
	c.WaitStatus(to, stepTimeout, "promoted", isPrimary)
	if err := w.WaitAcks(100, stepTimeout); err != nil {
		t.Fatalf("writes did not resume: %v", err)
	}
	acks := w.Stop()
	gap := insttest.MaxGap(acks, t0, time.Now())
	t.Logf("switchover %s -> %s: %d commits acknowledged, writes stopped for %s", c.Instances[from].Name, c.Instances[to].Name, len(acks), gap)
	missing, err := insttest.Missing(ctx, c.InstanceDSN(to, "app", insttest.AppPassword, "app"), acks)
	if err != nil {
		t.Fatal(err)
	}
	if len(missing) > 0 {
		t.Fatalf("%d acknowledged commits lost, first %v", len(missing), missing[:min(5, len(missing))])
	}
	checkRouting(t, c, to)
	// The old primary rejoins as a standby of the new one, as does the
	// bystander.
	for i := range c.Instances {
		if i != to {
			c.WaitStatus(i, stepTimeout, "standby of the new primary", isStreamingStandbyOf(c.Instances[to].Address()))
		}
	}
	if strings.Count(readLog(t, c, from), rewind) != rewindsBefore {
		t.Error("the old primary ran pg_rewind after a clean switchover (timelines had not diverged)")
	}
	s, _ := c.Status(to)
	if s.Timeline < 2 {
		t.Errorf("new primary on timeline %d", s.Timeline)
	}
}

// checkRouting: NAME-rw's EndpointSlice names the primary's pod IP, and the
// role labels say who is primary.
func checkRouting(t *testing.T, c *insttest.Cluster, primary int) {
	t.Helper()
	ctx := context.Background()
	addr, err := c.RWEndpoint(ctx)
	if err != nil || addr != c.Instances[primary].PodIP {
		t.Errorf("%s-rw routes to %q (%v), want %s", c.Name, addr, err, c.Instances[primary].PodIP)
	}
	got, err := c.RoleLabel(ctx, c.Instances[primary].Name)
	if err != nil || got != "primary" {
		t.Errorf("%s labelled %q (%v), want primary", c.Instances[primary].Name, got, err)
	}
	for i, inst := range c.Instances {
		if i == primary {
			continue
		}
		// The previous primary is relabelled by the promoting side; the
		// others label themselves when they follow.
		deadline := time.Now().Add(10 * time.Second)
		for {
			got, err = c.RoleLabel(ctx, inst.Name)
			if got == "replica" || time.Now().After(deadline) {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if got != "replica" {
			t.Errorf("%s labelled %q (%v), want replica", inst.Name, got, err)
		}
	}
}

// checkNoSecrets: no HTTP response (the raw bodies of /healthz, /readyz,
// /status) and no log line carries a password.
func checkNoSecrets(t *testing.T, c *insttest.Cluster) {
	t.Helper()
	for i, inst := range c.Instances {
		var bodies []string
		for _, path := range []string{"/healthz", "/readyz", "/status"} {
			resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d%s", inst.HTTPPort, path))
			if err != nil {
				t.Fatalf("%s %s: %v", inst.Name, path, err)
			}
			b, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil {
				t.Fatal(err)
			}
			if path == "/status" && !json.Valid(b) {
				t.Errorf("%s: /status is not JSON: %q", inst.Name, b)
			}
			bodies = append(bodies, path+" "+string(b))
		}
		logs := readLog(t, c, i)
		for _, secret := range []string{insttest.SuperuserPassword, insttest.ReplicationPassword, insttest.AppPassword} {
			for _, b := range bodies {
				if strings.Contains(b, secret) {
					t.Errorf("%s: %s contains a password", inst.Name, strings.Fields(b)[0])
				}
			}
			if strings.Contains(logs, secret) {
				t.Errorf("%s: the log contains a password", inst.Name)
			}
		}
	}
}

func readLog(t *testing.T, c *insttest.Cluster, i int) string {
	t.Helper()
	b, err := os.ReadFile(c.Instances[i].LogFile)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// checkStatic: the binary the managers ran (and the init container
// copies) needs no dynamic loader or shared library, so it runs in any
// PostgreSQL image.
func checkStatic(t *testing.T, path string) {
	t.Helper()
	f, err := elf.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
			t.Errorf("%s is dynamically linked (program header %v): build it with CGO_ENABLED=0", path, p.Type)
		}
	}
}

// checkReadOnlyRoot: when the harness runs the managers with a read-only
// root filesystem, the bootstrap above (initdb, pg_basebackup, start,
// streaming) happened under it; make sure it really was read-only.
func checkReadOnlyRoot(t *testing.T, c *insttest.Cluster) {
	t.Helper()
	if !c.ReadOnlyRoot {
		t.Log("not exercised: the managers ran with a writable root filesystem")
		return
	}
	for i := range c.Instances {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/mountinfo", c.ManagerPID(i)))
		if err != nil {
			t.Fatal(err)
		}
		var rootOpts string
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) > 5 && f[4] == "/" {
				rootOpts = f[5]
			}
		}
		if !strings.HasPrefix(rootOpts, "ro,") && rootOpts != "ro" {
			t.Errorf("%s: root filesystem mounted %q in the manager's namespace, want read-only", c.Instances[i].Name, rootOpts)
		}
	}
}

// checkJSONLogs: every line on the manager's stdout is JSON, postgres's own
// lines included.
func checkJSONLogs(t *testing.T, c *insttest.Cluster, i int) {
	t.Helper()
	b, err := os.ReadFile(c.Instances[i].LogFile)
	if err != nil {
		t.Fatal(err)
	}
	var fromPostgres int
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Errorf("not a JSON line: %q", line)
			continue
		}
		if rec["logger"] == "postgres" {
			fromPostgres++
		}
	}
	if fromPostgres == 0 {
		t.Error("no postgres log lines were relayed")
	}
}
