package e2e

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/ProtonMail/go-crypto/openpgp"
	git "github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing/object"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/pgsync/pgsync/internal/podcontract"
	"github.com/pgsync/pgsync/test/gittest"
	"github.com/pgsync/pgsync/test/insttest"
	"github.com/pgsync/pgsync/test/kubeenv"
)

// daemonProc is `pgsync run` as a process.
type daemonProc struct {
	cmd  *osexec.Cmd
	out  *bytes.Buffer
	addr string
}

func startDaemon(ctx context.Context, t *testing.T, env *kubeenv.Env, repo *gitRepo, interval string, extra ...string) *daemonProc {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	d := &daemonProc{out: &bytes.Buffer{}, addr: addr}
	d.cmd = osexec.CommandContext(ctx, insttest.Binary(t), "run", "--repo", repo.dir, "--path", "clusters",
		"--kubeconfig", env.Kubeconfig, "--namespace", env.Namespace, "--interval", interval, "--leader-elect=false",
		"--http-addr", addr, "--instance-image", pgsyncImage, "--instance-image-pull-policy", "Always", "--step-timeout", "3m")
	d.cmd.Args = append(d.cmd.Args, extra...)
	d.cmd.Stdout, d.cmd.Stderr = d.out, d.out
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { d.stop() })
	return d
}

func (d *daemonProc) stop() {
	if d.cmd.ProcessState == nil {
		_ = d.cmd.Process.Signal(syscall.SIGTERM)
		_ = d.cmd.Wait()
	}
}

type daemonStatus struct {
	Last struct {
		Commit   string `json:"commit"`
		Rejected string `json:"rejected"`
		Clusters []struct {
			Cluster, Outcome, Step, Reason string
		} `json:"clusters"`
		Observed int `json:"observed"`
	} `json:"lastCycle"`
}

func (d *daemonProc) status(t *testing.T) (daemonStatus, error) {
	t.Helper()
	var st daemonStatus
	resp, err := http.Get("http://" + d.addr + "/status")
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	return st, json.NewDecoder(resp.Body).Decode(&st)
}

// TestDaemonConverges: `pgsync run`, deployed in-cluster from deploy/run
// (two replicas, its own least-privilege token, PodSecurity restricted)
// and reading Git over HTTP from a server on the node, creates a cluster,
// rolls a pushed version bump within its interval, and keeps the last
// good commit (applying nothing) when a commit fails validation; then, as
// a process, it starts a cycle at once on a push webhook.
func TestDaemonConverges(t *testing.T) {
	env := kubeenv.Cluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	cs, ns := env.Client, env.Namespace
	repo := newGitRepo(t, ns)
	repo.commit(websiteYAML(ns, image1518, 2, ""), "website at 15.18")
	const secret = "s3cret-for-the-test"
	dc := deployDaemon(ctx, t, env, serveGit(ctx, t, repo), "3s", secret)
	var d *daemonProc
	t.Cleanup(func() {
		if t.Failed() {
			if d != nil {
				t.Logf("pgsync run log:\n%s", lastLines(d.out.String(), 60))
			} else {
				t.Logf("in-cluster pgsync run logs:\n%s", dc.logs(t))
			}
			dumpPods(t, cs, ns, "website")
		}
	})

	// The daemon whose /status is read: the in-cluster one, then d.
	status := dc.status
	waitConverged := func(what, image string, timeout time.Duration) {
		t.Helper()
		deadline := time.Now().Add(timeout)
		for time.Now().Before(deadline) {
			st, err := status(t)
			if err == nil && len(st.Last.Clusters) == 1 && st.Last.Clusters[0].Outcome == "converged" && allAt(ctx, cs, ns, image, 2) {
				return
			}
			time.Sleep(time.Second)
		}
		st, _ := status(t)
		t.Fatalf("%s: not converged to %s after %s; last cycle %+v", what, image, timeout, st.Last)
	}
	start := time.Now()
	waitConverged("create", image1518, 5*time.Minute)
	t.Logf("created by the daemon in %.1f s", time.Since(start).Seconds())

	repo.commit(websiteYAML(ns, image1520, 2, ""), "website at 15.20")
	pushed := time.Now()
	waitConverged("rollout", image1520, 5*time.Minute)
	t.Logf("15.18 → 15.20 rolled by the daemon %.1f s after the commit", time.Since(pushed).Seconds())
	// Converged and unchanged, the cluster is not read again: the
	// in-cluster daemon observes through watches with deploy/apply's
	// rights (a daemon that lists reads it every cycle).
	waitUntil(ctx, t, "an idle cycle of the in-cluster daemon that reads no cluster", time.Second, func() bool {
		st, err := status(t)
		return err == nil && len(st.Last.Clusters) == 1 && st.Last.Clusters[0].Outcome == "converged" && st.Last.Observed == 0
	})
	if logs := dc.logsSince(t, "-1"); !strings.Contains(logs, `"msg":"watch: caches synced","unwatched":null`) {
		t.Errorf("the in-cluster daemon does not watch every kind it renders:\n%s", logs)
	}
	if !allAt(ctx, cs, ns, image1520, 2) {
		t.Errorf("not 2 pods at %s after the rollout", image1520)
	}
	checkAllAt(ctx, t, cs, ns, 2, image1520, primaryOf(ctx, t, cs, ns))

	// An invalid commit: rejected, nothing applied, the last good kept.
	good, _ := dc.status(t)
	repo.commit(websiteYAML(ns, image1518, 0, ""), "instances: 0 is invalid")
	deadline := time.Now().Add(time.Minute)
	var st daemonStatus
	for time.Now().Before(deadline) {
		st, _ = dc.status(t)
		if strings.Contains(st.Last.Rejected, "invalid") {
			break
		}
		time.Sleep(time.Second)
	}
	if !strings.Contains(st.Last.Rejected, "must be at least 1") || st.Last.Commit != good.Last.Commit {
		t.Errorf("invalid commit: rejected %q, planning from %s (want the last good %s)", st.Last.Rejected, st.Last.Commit, good.Last.Commit)
	}
	sts, err := cs.AppsV1().StatefulSets(ns).Get(ctx, "website", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if *sts.Spec.Replicas != 2 || !allAt(ctx, cs, ns, image1520, 2) {
		t.Errorf("an invalid commit changed the cluster: replicas %d", *sts.Spec.Replicas)
	}

	// Metrics: the cluster's state and the cycles.
	leader, err := dc.leaderAddr(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if m := get(t, "http://"+leader+"/metrics"); !strings.Contains(m, `pgsync_cluster_state{name="website",namespace="`+ns+`",state="converged"} 1`) ||
		!strings.Contains(m, "pgsync_cycle_duration_seconds_count") {
		t.Errorf("/metrics lacks the cluster's converged state or the cycle histogram:\n%s", grepLines(m, "pgsync_"))
	}
	// The webhook secret, mounted from its Secret (group-readable by the
	// daemon's fsGroup), is read: a wrong signature is refused, the right
	// one accepted.
	push := []byte(`{"ref":"refs/heads/main","after":"0000000000000000000000000000000000000000","repository":{"full_name":"org/fleet"}}`)
	for _, tc := range []struct {
		secret string
		want   int
	}{{"wrong", http.StatusUnauthorized}, {secret, http.StatusAccepted}} {
		mac := hmac.New(sha256.New, []byte(tc.secret))
		mac.Write(push)
		req, _ := http.NewRequest(http.MethodPost, "http://"+leader+"/webhook", bytes.NewReader(push))
		req.Header.Set("X-GitHub-Event", "push")
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("in-cluster webhook signed with %q: %d, want %d", tc.secret, resp.StatusCode, tc.want)
		}
	}

	// A push webhook: with a 10-minute interval, a signed GitHub push
	// starts the next cycle at once (the daemon as a process: deploy/run
	// mounts no webhook secret).
	dc.stop(ctx, t)
	secretFile := filepath.Join(t.TempDir(), "webhook-secret")
	if err := os.WriteFile(secretFile, []byte("s3cret-for-the-test\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	d = startDaemon(ctx, t, env, repo, "10m", "--webhook-secret-file", secretFile)
	status = d.status
	repo.commit(websiteYAML(ns, image1520, 2, ""), "fixed: back to a valid spec")
	head := strings.TrimSpace(repo.output("rev-parse", "HEAD"))
	waitCommit := func(want string, timeout time.Duration) bool {
		deadline := time.Now().Add(timeout)
		for time.Now().Before(deadline) {
			if st, err := d.status(t); err == nil && st.Last.Commit == want {
				return true
			}
			time.Sleep(50 * time.Millisecond)
		}
		return false
	}
	if !waitCommit(head, time.Minute) {
		t.Fatalf("the restarted daemon never planned from %s", head)
	}
	repo.commit(websiteYAML(ns, image1518, 2, ""), "15.18 again, pushed with a webhook")
	head = strings.TrimSpace(repo.output("rev-parse", "HEAD"))
	body := []byte(`{"ref":"refs/heads/main","after":"` + head + `","repository":{"full_name":"org/fleet"}}`)
	mac := hmac.New(sha256.New, []byte("s3cret-for-the-test"))
	mac.Write(body)
	bad, _ := http.NewRequest(http.MethodPost, "http://"+d.addr+"/webhook", bytes.NewReader(body))
	bad.Header.Set("X-GitHub-Event", "push")
	bad.Header.Set("Content-Type", "application/json")
	bad.Header.Set("X-Hub-Signature-256", "sha256=00")
	if resp, err := http.DefaultClient.Do(bad); err != nil || resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("a push with a wrong signature: %v %v, want 401", resp, err)
	}
	req, _ := http.NewRequest(http.MethodPost, "http://"+d.addr+"/webhook", bytes.NewReader(body))
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	posted := time.Now()
	resp, err := http.DefaultClient.Do(req)
	if err != nil || resp.StatusCode/100 != 2 {
		t.Fatalf("webhook POST: %v %v", resp, err)
	}
	if !waitCommit(head, 10*time.Second) {
		t.Fatalf("a signed push did not start a cycle within 10 s (interval 10m)")
	}
	t.Logf("webhook push → a cycle planning from the new commit in %.0f ms", float64(time.Since(posted).Milliseconds()))
	waitConverged("webhook rollout", image1518, 5*time.Minute)

	// pgsync reconcile: with the 10-minute interval, the annotation it
	// writes starts a cycle at once. (The commit is signed for the trust
	// check below: changing no spec it is not recorded as applied, so it
	// is among the commits that check verifies.)
	signer, ring := gittest.NewSigner(t, "Release", "release@example.com")
	repo.signedCommit(websiteYAML(ns, image1518, 2, "")+"# reviewed\n", "a comment", signer)
	head = strings.TrimSpace(repo.output("rev-parse", "HEAD"))
	asked := time.Now()
	if out, code := pgsyncCLI(ctx, t, "reconcile", ns+"/website", "--kubeconfig", env.Kubeconfig); code != 0 || !strings.Contains(out, "reconcile requested") {
		t.Fatalf("pgsync reconcile: exit %d\n%s", code, out)
	}
	if !waitCommit(head, 10*time.Second) {
		t.Fatalf("pgsync reconcile did not start a cycle within 10 s (interval 10m)")
	}
	t.Logf("pgsync reconcile → a cycle planning from the new commit in %.0f ms", float64(time.Since(asked).Milliseconds()))
	if out, code := pgsyncCLI(ctx, t, "reconcile", ns+"/nosuch", "--kubeconfig", env.Kubeconfig); code != 1 || !strings.Contains(out, "no cluster "+ns+"/nosuch managed by pgsync") {
		t.Errorf("pgsync reconcile of an unknown cluster: exit %d, want 1 and why\n%s", code, out)
	}

	// Trust: with --verify-key, a signed head over an unsigned commit is
	// refused — every commit since the last applied one must be signed —
	// and nothing changes.
	ringFile := filepath.Join(t.TempDir(), "trusted.asc")
	if err := os.WriteFile(ringFile, []byte(ring), 0o644); err != nil {
		t.Fatal(err)
	}
	d.stop()
	signed := repo.signedCommit(websiteYAML(ns, image1518, 2, "")+"# reviewed and signed\n", "signed", signer)
	d = startDaemon(ctx, t, env, repo, "10m", "--webhook-secret-file", secretFile, "--verify-key", ringFile)
	status = d.status
	if !waitCommit(signed, time.Minute) {
		st, _ := d.status(t)
		t.Fatalf("the daemon with --verify-key never planned from the signed %s: %+v", signed, st.Last)
	}
	// refused: after a push, the daemon refuses the head with a reason
	// holding want, keeps planning from keep, and the cluster stays.
	refused := func(what, want, keep string) {
		t.Helper()
		d.Trigger(t, body, "s3cret-for-the-test")
		var st daemonStatus
		if !within(30*time.Second, func() bool { st, _ = d.status(t); return strings.Contains(st.Last.Rejected, want) }) || st.Last.Commit != keep {
			t.Errorf("%s: rejected %q, planning from %s (want %q, still %s)", what, st.Last.Rejected, st.Last.Commit, want, keep)
		}
		time.Sleep(3 * time.Second)
		if !allAt(ctx, cs, ns, image1518, 2) {
			t.Errorf("%s changed the cluster", what)
		}
	}
	repo.commit(websiteYAML(ns, image1520, 2, ""), "15.20, unsigned")
	repo.signedCommit(websiteYAML(ns, image1520, 2, "")+"# signed on top\n", "a signed head over it", signer)
	refused("a signed head over an unsigned commit", "not signed", signed)

	// A force-push back to an older commit (before the last applied, the
	// signed one): refused, nothing changes.
	repo.git("reset", "-q", "--hard", "HEAD~3")
	refused("a force-push to an older commit", "--allow-rewind", signed)
}

// signedCommit commits content as the cluster file, signed by key (go-git:
// the git CLI would need gpg), and returns the commit.
func (r *gitRepo) signedCommit(content, msg string, key *openpgp.Entity) string {
	r.t.Helper()
	if err := os.WriteFile(r.file, []byte(content), 0o644); err != nil {
		r.t.Fatal(err)
	}
	repo, err := git.PlainOpen(r.dir)
	if err != nil {
		r.t.Fatal(err)
	}
	wt, err := repo.Worktree()
	if err != nil {
		r.t.Fatal(err)
	}
	if err := wt.AddWithOptions(&git.AddOptions{All: true}); err != nil {
		r.t.Fatal(err)
	}
	sig := &object.Signature{Name: "Release", Email: "release@example.com", When: time.Now()}
	h, err := wt.Commit(msg, &git.CommitOptions{Author: sig, Committer: sig, SignKey: key})
	if err != nil {
		r.t.Fatal(err)
	}
	return h.String()
}

// Trigger posts a signed GitHub push.
func (d *daemonProc) Trigger(t *testing.T, body []byte, secret string) {
	t.Helper()
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(body)
	req, _ := http.NewRequest(http.MethodPost, "http://"+d.addr+"/webhook", bytes.NewReader(body))
	req.Header.Set("X-GitHub-Event", "push")
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Hub-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
}

func get(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

func grepLines(s, substr string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, substr) && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// allAt: exactly n website pods, each Ready and running image.
func allAt(ctx context.Context, cs kubernetes.Interface, ns, image string, n int) bool {
	return podsAt(ctx, cs, ns, podcontract.LabelCluster+"=website", image, n)
}

// podsAt: exactly n pods match selector, all Ready on image.
func podsAt(ctx context.Context, cs kubernetes.Interface, ns, selector, image string, n int) bool {
	list, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: selector})
	if err != nil || len(list.Items) != n {
		return false
	}
	for _, p := range list.Items {
		if p.Spec.Containers[0].Image != image || podProblem(p) != "" {
			return false
		}
	}
	return true
}

// podProblem is "" for a Ready pod.
func podProblem(p corev1.Pod) string {
	for _, c := range p.Status.Conditions {
		if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
			return ""
		}
	}
	return fmt.Sprintf("%s not Ready", p.Name)
}

// TestDaemonLeaderElection: two replicas elect one leader; the leader is
// killed in the middle of a rollout (after its first restart) and the
// other takes over within 15 s and finishes it: every pod replaced
// exactly once, one switchover.
func TestDaemonLeaderElection(t *testing.T) {
	t.Parallel() // a busy node changes none of its assertions (doc.go)
	env := kubeenv.Cluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cs, ns := env.Client, env.Namespace
	repo := newGitRepo(t, ns)
	repo.commit(websiteYAML(ns, image1518, 2, ""), "website at 15.18")
	elect := []string{"--leader-elect", "--leader-election-namespace", ns}
	a := startDaemon(ctx, t, env, repo, "2s", elect...)
	b := startDaemon(ctx, t, env, repo, "2s", elect...)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("replica a:\n%s\nreplica b:\n%s", lastLines(a.out.String(), 40), lastLines(b.out.String(), 40))
			dumpPods(t, cs, ns, "website")
		}
	})
	leads := func(d *daemonProc) bool {
		resp, err := http.Get("http://" + d.addr + "/status")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		var st struct {
			Leader bool `json:"leader"`
		}
		return json.NewDecoder(resp.Body).Decode(&st) == nil && st.Leader
	}
	var lead, other *daemonProc
	for deadline := time.Now().Add(time.Minute); lead == nil && time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		switch la, lb := leads(a), leads(b); {
		case la && !lb:
			lead, other = a, b
		case lb && !la:
			lead, other = b, a
		}
	}
	if lead == nil {
		t.Fatal("no single leader elected within a minute")
	}
	if !within(3*time.Minute, func() bool { return allAt(ctx, cs, ns, image1518, 2) }) {
		t.Fatal("the leader did not create the cluster")
	}
	waitUntil(ctx, t, "the cluster is converged", time.Second, func() bool {
		st, err := lead.status(t)
		return err == nil && len(st.Last.Clusters) == 1 && st.Last.Clusters[0].Outcome == "converged"
	})

	h := recordHistory(ctx, t, cs, ns, "website")
	standby := "website-1"
	if primaryOf(ctx, t, cs, ns) == standby {
		standby = "website-0"
	}
	primary := primaryOf(ctx, t, cs, ns)
	repo.commit(websiteYAML(ns, image1520, 2, ""), "website at 15.20")
	// Mid-rollout: the standby has been restarted onto 15.20.
	waitUntil(ctx, t, standby+" restarted onto 15.20", 100*time.Millisecond, func() bool {
		p, err := cs.CoreV1().Pods(ns).Get(ctx, standby, metav1.GetOptions{})
		return err == nil && p.UID != h.first(standby) && len(p.Spec.Containers) > 0 && p.Spec.Containers[0].Image == image1520
	})
	_ = lead.cmd.Process.Kill()
	_ = lead.cmd.Wait()
	killed := time.Now()
	if !within(30*time.Second, func() bool { return leads(other) }) {
		t.Fatal("the other replica never took over")
	}
	took := time.Since(killed)
	t.Logf("leader killed mid-rollout; the other replica leads %.1f s later", took.Seconds())
	if took > 15*time.Second {
		t.Errorf("takeover took %.1f s, want ≤ 15 s", took.Seconds())
	}
	if !within(4*time.Minute, func() bool { return allAt(ctx, cs, ns, image1520, 2) && primaryOf(ctx, t, cs, ns) == standby }) {
		t.Fatal("the new leader did not finish the rollout")
	}
	waitUntil(ctx, t, "the cluster is converged", time.Second, func() bool {
		st, err := other.status(t)
		return err == nil && len(st.Last.Clusters) == 1 && st.Last.Clusters[0].Outcome == "converged"
	})
	h.stop()
	h.check(t, []string{"website-0", "website-1"}, 1, []string{primary, standby})
}

// within polls cond every 200 ms until it holds or timeout passes.
func within(timeout time.Duration, cond func() bool) bool {
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if cond() {
			return true
		}
	}
	return false
}
