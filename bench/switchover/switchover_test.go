// Package switchover measures how long writes stop during a switchover
// driven by pgsync's instance managers (target annotation on the Lease →
// demote → promote), against a raw baseline on the same data directories
// with the same client: CHECKPOINT, fast stop, wait for replay, promote.
//
// Run (root or a user owning its temp dir; PostgreSQL 15 server binaries;
// the test/kubeenv kube-apiserver):
//
//	go test -run '^$' -bench Switchover -benchtime=1x -timeout 30m ./bench/switchover
//
// BENCH_SWITCHOVERS sets the number of switchovers of each kind (10);
// BENCH_VERBOSE=1 logs each managed switchover's gap and its bounds;
// PGSYNC_KEEP=1 keeps the data directories and logs.
package switchover

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pgsync/pgsync/internal/instance"
	"github.com/pgsync/pgsync/internal/instance/conffile"
	"github.com/pgsync/pgsync/internal/instance/role"
	"github.com/pgsync/pgsync/internal/podcontract"
	"github.com/pgsync/pgsync/test/insttest"
	"github.com/pgsync/pgsync/test/kubeenv"
)

func TestMain(m *testing.M) {
	code := kubeenv.Main(m)
	insttest.RemoveBinary()
	os.Exit(code)
}

type result struct {
	gaps []time.Duration
	lost int
}

func (r result) stats() (med, lo, hi time.Duration) {
	s := slices.Clone(r.gaps)
	slices.Sort(s)
	n := len(s)
	if n == 0 {
		return
	}
	med = s[n/2]
	if n%2 == 0 {
		med = (s[n/2-1] + s[n/2]) / 2
	}
	return med, s[0], s[n-1]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func BenchmarkSwitchover(b *testing.B) {
	n, block := 10, 2
	if v, err := strconv.Atoi(os.Getenv("BENCH_SWITCHOVERS")); err == nil && v > 0 {
		n = v
	}
	c := insttest.NewCluster(b, "bench", 3)
	startManagers(b, c)
	ctx := context.Background()
	dsn := c.DSN("app", insttest.AppPassword, "app")
	if err := insttest.CreateProbeTable(ctx, dsn); err != nil {
		b.Fatal(err)
	}
	// One client for both kinds: it reconnects through the multi-host DSN
	// and never knows which kind of switchover happens.
	w := insttest.StartWriter(dsn, 1)
	defer w.Stop()

	// Blocks of `block` switchovers of each kind alternate, so both see
	// the same machine load (2 shared cores).
	b.ResetTimer()
	var managed, baseline result
	lost := map[int64]bool{}
	primary := 0
	for done := 0; done < n; done += block {
		k := min(block, n-done)
		primary = runManaged(b, c, w, primary, k, &managed)
		managed.lost += newlyMissing(b, c, w, primary, lost)
		c.StopAll()
		primary = runBaseline(b, c, w, primary, k, &baseline, lost)
		handLeaseTo(b, c, primary)
		startManagers(b, c)
	}
	b.StopTimer()

	mMed, mMin, mMax := managed.stats()
	bMed, bMin, bMax := baseline.stats()
	b.ReportMetric(ms(mMed), "median-ms")
	b.ReportMetric(ms(mMin), "min-ms")
	b.ReportMetric(ms(mMax), "max-ms")
	b.ReportMetric(float64(managed.lost), "lost")
	b.ReportMetric(ms(bMed), "baseline-median-ms")
	b.ReportMetric(ms(bMin), "baseline-min-ms")
	b.ReportMetric(ms(bMax), "baseline-max-ms")
	b.ReportMetric(float64(baseline.lost), "baseline-lost")
	if bMed > 0 {
		b.ReportMetric(float64(mMed)/float64(bMed), "ratio")
	}
	b.Logf("pgsync:   %d switchovers, write stop median %.1f ms (min %.1f, max %.1f), lost %d; each: %v",
		len(managed.gaps), ms(mMed), ms(mMin), ms(mMax), managed.lost, managed.gaps)
	b.Logf("baseline: %d switchovers, write stop median %.1f ms (min %.1f, max %.1f), lost %d; each: %v",
		len(baseline.gaps), ms(bMed), ms(bMin), ms(bMax), baseline.lost, baseline.gaps)
}

func startManagers(b *testing.B, c *insttest.Cluster) {
	for i := range c.Instances {
		c.Start(i)
	}
	for i := range c.Instances {
		c.WaitStatus(i, 2*time.Minute, "ready", func(s instance.Status) bool {
			return s.Accepting && ((s.Role == "primary" && s.Action == "wait") || s.Streaming)
		})
	}
}

// newlyMissing counts acknowledged commits absent from the primary that
// were not already counted.
func newlyMissing(b *testing.B, c *insttest.Cluster, w *insttest.Writer, primary int, seen map[int64]bool) int {
	missing, err := insttest.Missing(context.Background(), c.InstanceDSN(primary, "app", insttest.AppPassword, "app"), w.Acks())
	if err != nil {
		b.Fatal(err)
	}
	n := 0
	for _, id := range missing {
		if !seen[id] {
			seen[id] = true
			n++
		}
	}
	return n
}

// handLeaseTo makes the Lease say what the baseline left: primary holds it
// and is the target (what pgsync's daemon would find after a manual
// switchover).
func handLeaseTo(b *testing.B, c *insttest.Cluster, primary int) {
	ctx := context.Background()
	l, err := c.Lease(ctx)
	if err != nil {
		b.Fatal(err)
	}
	name := c.Instances[primary].Name
	now := metav1.NewMicroTime(time.Now())
	l.Spec.HolderIdentity = &name
	l.Spec.RenewTime = &now
	l.Annotations[podcontract.AnnTargetPrimary] = name
	l.Annotations[podcontract.AnnPrimaryAddress] = c.Instances[primary].Address()
	delete(l.Annotations, podcontract.AnnFinalLSN)
	delete(l.Annotations, podcontract.AnnReleasedBy)
	if _, err := c.Admin.CoordinationV1().Leases(c.Namespace).Update(ctx, l, metav1.UpdateOptions{}); err != nil {
		b.Fatal(err)
	}
}

// runManaged performs k switchovers through the Lease annotation, rotating
// the primary over the instances, and returns the last primary.
func runManaged(b *testing.B, c *insttest.Cluster, w *insttest.Writer, primary, k int, r *result) int {
	ctx := context.Background()
	for j := 0; j < k; j++ {
		to := (primary + 1) % len(c.Instances)
		waitManagedStandbys(b, c, primary)
		if err := w.WaitAcks(200, time.Minute); err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		if err := c.SetTarget(ctx, c.Instances[to].Name); err != nil {
			b.Fatal(err)
		}
		c.WaitStatus(to, time.Minute, "primary", func(s instance.Status) bool {
			return s.Role == "primary" && s.LeaseHolder == s.Instance
		})
		if err := w.WaitAcks(200, time.Minute); err != nil {
			b.Fatal(err)
		}
		gap, from, until := insttest.GapBounds(w.Acks(), t0, time.Now())
		r.gaps = append(r.gaps, gap)
		if os.Getenv("BENCH_VERBOSE") != "" {
			b.Logf("pgsync %s -> %s: writes stopped %s from %s to %s", c.Instances[primary].Name, c.Instances[to].Name,
				gap, from.UTC().Format("15:04:05.000"), until.UTC().Format("15:04:05.000"))
		}
		primary = to
	}
	// The last old primary rejoins before the managers stop, so the
	// baseline starts from one primary and streaming standbys.
	waitManagedStandbys(b, c, primary)
	return primary
}

func waitManagedStandbys(b *testing.B, c *insttest.Cluster, primary int) {
	for i := range c.Instances {
		if i != primary {
			c.WaitStatus(i, time.Minute, "streaming from the primary", func(s instance.Status) bool {
				return s.Role == "standby" && s.Streaming && s.Upstream == c.Instances[primary].Address()
			})
		}
	}
}

func connectRetry(b *testing.B, dsn string) *pgx.Conn {
	deadline := time.Now().Add(time.Minute)
	for {
		c, err := pgx.Connect(context.Background(), dsn)
		if err == nil {
			return c
		}
		if time.Now().After(deadline) {
			b.Fatalf("connect: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// writeStandbyConf makes inst a standby of primary with the same generated
// configuration the manager writes.
func writeStandbyConf(b *testing.B, c *insttest.Cluster, inst *insttest.Instance, primary *insttest.Instance) {
	params := map[string]string{}
	if raw, err := os.ReadFile(c.ParametersFile); err == nil {
		_ = jsonUnmarshal(raw, &params)
	}
	conf, _ := conffile.Render(conffile.Settings{
		Port: inst.Port, ListenAddresses: "127.0.0.1", SocketDir: inst.RunDir, Parameters: params,
		PrimaryConnInfo: conffile.ConnInfo("127.0.0.1", primary.Port, conffile.ReplicationUser, inst.Name, filepath.Join(inst.RunDir, "pgpass")),
	})
	write := func(name string, data []byte) {
		if err := c.WriteFileAs(filepath.Join(inst.PGData, name), data); err != nil {
			b.Fatal(err)
		}
	}
	write(conffile.FileName, []byte(conf))
	write("standby.signal", nil)
}

// runBaseline performs k raw switchovers on the same data directories
// (the managers are stopped) and returns the last primary.
func runBaseline(b *testing.B, c *insttest.Cluster, w *insttest.Writer, primary, k int, r *result, seen map[int64]bool) int {
	ctx := context.Background()
	servers := make([]*insttest.Raw, len(c.Instances))
	for i := range c.Instances {
		servers[i] = c.StartRaw(i)
	}
	defer func() {
		for _, s := range servers {
			s.StopFast()
		}
	}()
	for i := range c.Instances {
		connectRetry(b, c.SuperuserDSN(i)).Close(ctx)
	}
	for j := 0; j < k; j++ {
		to := (primary + 1) % len(c.Instances)
		waitStreaming(b, c, primary)
		if err := w.WaitAcks(200, time.Minute); err != nil {
			b.Fatal(err)
		}
		t0 := time.Now()
		// 1. CHECKPOINT on the primary (writes continue meanwhile).
		pc := connectRetry(b, c.SuperuserDSN(primary))
		if _, err := pc.Exec(ctx, "CHECKPOINT"); err != nil {
			b.Fatal(err)
		}
		pc.Close(ctx)
		// 2. Fast stop; its final checkpoint LSN.
		servers[primary].StopFast()
		out, err := exec.Command(c.PGBin.Path("pg_controldata"), "-D", c.Instances[primary].PGData).Output()
		if err != nil {
			b.Fatal(err)
		}
		final, err := checkpointLSN(string(out))
		if err != nil {
			b.Fatal(err)
		}
		// 3. Wait for the target to replay it; 4. promote.
		tc := connectRetry(b, c.SuperuserDSN(to))
		for {
			var s string
			if err := tc.QueryRow(ctx, "SELECT pg_last_wal_replay_lsn()::text").Scan(&s); err != nil {
				b.Fatal(err)
			}
			if l, _ := role.ParseLSN(s); l >= final {
				break
			}
			time.Sleep(2 * time.Millisecond)
		}
		if _, err := tc.Exec(ctx, "SELECT pg_promote(wait => false)"); err != nil {
			b.Fatal(err)
		}
		for {
			var rec bool
			if err := tc.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&rec); err != nil {
				b.Fatal(err)
			}
			if !rec {
				break
			}
			time.Sleep(2 * time.Millisecond)
		}
		tc.Close(ctx)
		if err := w.WaitAcks(200, time.Minute); err != nil {
			b.Fatal(err)
		}
		r.gaps = append(r.gaps, insttest.MaxGap(w.Acks(), t0, time.Now()))
		// Outside the measured window: the old primary rejoins, the
		// bystander follows.
		writeStandbyConf(b, c, c.Instances[primary], c.Instances[to])
		servers[primary] = c.StartRaw(primary)
		for i := range c.Instances {
			if i != primary && i != to {
				writeStandbyConf(b, c, c.Instances[i], c.Instances[to])
				servers[i].Signal(syscall.SIGHUP)
			}
		}
		primary = to
	}
	waitStreaming(b, c, primary)
	r.lost += newlyMissing(b, c, w, primary, seen)
	return primary
}

// waitStreaming waits until every other instance streams from primary.
func waitStreaming(b *testing.B, c *insttest.Cluster, primary int) {
	ctx := context.Background()
	pc := connectRetry(b, c.SuperuserDSN(primary))
	defer pc.Close(ctx)
	deadline := time.Now().Add(time.Minute)
	for {
		var k int
		if err := pc.QueryRow(ctx, "SELECT count(*) FROM pg_stat_replication WHERE state = 'streaming'").Scan(&k); err != nil {
			b.Fatal(err)
		}
		if k == len(c.Instances)-1 {
			return
		}
		if time.Now().After(deadline) {
			b.Fatalf("only %d standbys stream from %s", k, c.Instances[primary].Name)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

// checkpointLSN reads "Latest checkpoint location" from pg_controldata.
func checkpointLSN(out string) (role.LSN, error) {
	for _, line := range strings.Split(out, "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "Latest checkpoint location" {
			return role.ParseLSN(v)
		}
	}
	return 0, fmt.Errorf("no checkpoint location in %q", out)
}
