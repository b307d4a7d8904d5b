package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"

	"github.com/pgsync/pgsync/internal/apply"
	"github.com/pgsync/pgsync/internal/cluster"
	"github.com/pgsync/pgsync/internal/desired"
	"github.com/pgsync/pgsync/internal/imagegate"
	"github.com/pgsync/pgsync/internal/plan"
)

func init() { commands = append(commands, newApplyCmd) }

// exitAwaitingApproval: apply stopped before a supervised primary update.
const exitAwaitingApproval = 3

type applyArgs struct {
	source        desired.Source
	kube          kubeArgs
	prune         bool
	autoApprove   bool
	instanceImage string
	pullPolicy    string
	stepTimeout   time.Duration
	lockDuration  time.Duration
	logLevel      string
	planFile      string
	imagePolicy   imagePolicyFlag
}

func newApplyCmd() *cobra.Command {
	var args applyArgs
	cmd := &cobra.Command{
		Use:   "apply [PLANFILE]",
		Short: "Carry out the live plan, one step at a time, until the clusters converge",
		Long: `Apply plans the Clusters at --ref against what runs (as plan --live), prints
the plan, asks for confirmation ("yes") on a terminal unless --auto-approve,
then carries it out cluster by cluster: one step, observe, re-plan, the next
step, until the cluster has converged, is halted, or waits for approval.

A step that does not complete within --step-timeout (or the cluster's
pgsync.io/step-timeout annotation) halts that cluster: nothing further is
touched, the primary included; an Event and the StatefulSet's
pgsync.io/halted annotation say why. A later apply with a fixing commit
resumes. One apply at a time per cluster: a second one fails at once,
naming the holder of the cluster's NAME-apply Lease.

With PLANFILE (pgsync plan --live --format json --out PLANFILE), apply
carries out exactly that plan, without asking: it refuses, with exit 1,
when Git's --ref or what runs has moved since the plan was made
(Terraform's stale-plan rule), and stops if a cluster diverges from it.

Exit status: 0 every cluster converged (or nothing to do); 1 an error, a
refused change, or a halted cluster; 3 a cluster waits for approval
(primaryUpdateStrategy: supervised; pgsync approve NAMESPACE/NAME).`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, pos []string) error {
			if len(pos) == 1 {
				args.planFile = pos[0]
			}
			return runApply(cmd, args)
		},
	}
	registerSource(cmd, &args.source)
	args.kube.register(cmd)
	f := cmd.Flags()
	f.BoolVar(&args.prune, "prune", false, "delete clusters removed from Git (volumes and Secrets are kept) instead of orphaning them")
	f.BoolVar(&args.autoApprove, "auto-approve", false, "do not ask for confirmation")
	f.StringVar(&args.instanceImage, "instance-image", os.Getenv("PGSYNC_INSTANCE_IMAGE"), "the pgsync image the pods' init container copies the instance manager from (env PGSYNC_INSTANCE_IMAGE; default: the image a running cluster already uses)")
	f.StringVar(&args.pullPolicy, "instance-image-pull-policy", "", "pull policy of --instance-image: Always, IfNotPresent or Never (default IfNotPresent)")
	f.DurationVar(&args.stepTimeout, "step-timeout", apply.DefaultStepTimeout, "a step not complete after this long halts its cluster")
	f.DurationVar(&args.lockDuration, "lock-duration", apply.DefaultLockDuration, "how long the cluster's apply lock (Lease NAME-apply) outlives a pgsync killed while holding it (whole seconds, 6s to 10m)")
	f.StringVar(&args.logLevel, "log-level", "info", "debug, info, warn or error")
	args.imagePolicy.register(f)
	return cmd
}

func runApply(cmd *cobra.Command, args applyArgs) error {
	stderr, stdout := cmd.ErrOrStderr(), cmd.OutOrStdout()
	log, err := cliLogger(stderr, args.logLevel)
	if err != nil {
		return err
	}
	switch corev1.PullPolicy(args.pullPolicy) {
	case "", corev1.PullAlways, corev1.PullIfNotPresent, corev1.PullNever:
	default:
		return fmt.Errorf("--instance-image-pull-policy %q: allowed: Always, IfNotPresent, Never", args.pullPolicy)
	}
	if args.stepTimeout <= 0 {
		return fmt.Errorf("--step-timeout %s: must be positive", args.stepTimeout)
	}
	if err := apply.CheckLockDuration(args.lockDuration); err != nil {
		return err
	}
	gate, err := args.imagePolicy.gate()
	if err != nil {
		return err
	}
	if gate != nil && args.instanceImage == "" {
		return errors.New("--image-policy needs --instance-image (or PGSYNC_INSTANCE_IMAGE): the instance image is verified and pinned like the clusters' images, never kept unverified from what runs")
	}
	repo, err := desired.Open(cmd.Context(), args.source, log)
	if err != nil {
		return err
	}
	head, err := repo.Head()
	if err != nil {
		return reportHeadProblems(stderr, head.Set, err)
	}
	for _, w := range head.Set.Warnings {
		fmt.Fprintf(stderr, "%s: warning: %s\n", w.Pos, messageOf(w))
	}
	want := head.Set.Clusters
	if args.kube.namespace != "" {
		want = inNamespace(want, args.kube.namespace)
	}
	k, err := args.kube.connect()
	if err != nil {
		return err
	}
	ctx := cmd.Context()
	observed, err := observeLive(ctx, args.kube, k, log, want)
	if err != nil {
		return err
	}
	opts := plan.Options{Prune: args.prune}
	var images *imagegate.Result
	if gate != nil {
		images, err = enforceImages(ctx, stderr, gate, want, args.instanceImage, func(cs []*cluster.Cluster) error {
			_, err := plan.Make(cs, observed, opts)
			return err
		})
		if err != nil {
			return err
		}
		// What runs is what was verified: the pinned images.
		want, args.instanceImage = images.Clusters, images.InstanceImage
	}
	p, err := plan.Make(want, observed, opts)
	if err != nil {
		return reportProblems(stderr, err, "")
	}
	p.Head, p.Mode = head.Commit, plan.ModeLive
	withImages(p, images)
	var expect map[cluster.Key][]plan.Step
	if args.planFile != "" {
		if expect, err = checkSaved(args.planFile, p, observed, want); err != nil {
			return err
		}
		args.autoApprove = true // the saved plan was the review
	}
	var buf bytes.Buffer
	if err := plan.RenderText(&buf, p, plan.TextOptions{Color: colorTerminal(stdout)}); err != nil {
		return err
	}
	if _, err := stdout.Write(buf.Bytes()); err != nil {
		return err
	}
	if !p.HasChanges() {
		fmt.Fprintln(stdout, "\nNo changes: every cluster has converged.")
		return nil
	}
	if !args.autoApprove {
		ok, err := confirm(cmd.InOrStdin(), stdout)
		if err != nil {
			return err
		}
		if !ok {
			fmt.Fprintln(stdout, "Apply cancelled.")
			return exitError{code: 1}
		}
	}

	obs := args.kube.observeOptions(k)
	exec := &apply.Executor{Client: k.typed, Dynamic: k.dynamic, Status: obs.Status, InstanceImage: args.instanceImage,
		PullPolicy: corev1.PullPolicy(args.pullPolicy), Random: rand.Reader, Log: log, StepTimeout: args.stepTimeout,
		LockDuration: args.lockDuration}
	host, _ := os.Hostname()
	pr := newProgress(stdout, colorTerminal(stdout))
	run := &apply.Run{Exec: exec, Options: plan.Options{Prune: args.prune}, Owner: fmt.Sprintf("pgsync-apply %s/%d", host, os.Getpid()),
		Progress: pr.event, Expect: expect}
	byKey := map[cluster.Key]*cluster.Cluster{}
	for _, c := range want {
		byKey[c.Key()] = c
	}
	var results []apply.ClusterResult
	for _, cp := range p.Clusters {
		if cp.Action == plan.ActionNoOp {
			continue
		}
		key := cluster.Key{Namespace: cp.Namespace, Name: cp.Name}
		fmt.Fprintf(stdout, "\n%s: %s\n", key, cp.Action)
		res := run.Converge(ctx, key, byKey[key], head.Commit)
		pr.stop()
		results = append(results, res)
		fmt.Fprintf(stdout, "%s: %s after %d steps in %s\n", key, res.Outcome, res.Steps, res.Elapsed.Round(100*time.Millisecond))
		if res.Err != nil {
			fmt.Fprintf(stdout, "  %v\n", res.Err)
		}
		if res.Outcome == apply.AwaitingApproval {
			fmt.Fprintf(stdout, "  the standbys are updated; the primary's update waits: run `pgsync approve %s`, then apply again\n", key)
		}
	}
	return summarize(stdout, results)
}

// checkSaved compares a saved plan with the plan made now: the same
// commit, the same observed state (fingerprints), the same steps or the
// same equal choices among them (plan.SavedStepsStand: lag orders the
// standby restarts, and lag moves between plan and apply). It returns the
// saved steps per cluster.
func checkSaved(path string, now *plan.Plan, observed plan.Observed, want []*cluster.Cluster) (map[cluster.Key][]plan.Step, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("saved plan: %w", err)
	}
	defer f.Close()
	saved, err := plan.ReadJSON(f)
	if err != nil {
		return nil, fmt.Errorf("saved plan %s: %w", path, err)
	}
	if saved.Mode != plan.ModeLive {
		return nil, fmt.Errorf("saved plan %s is a %s plan: apply needs a live one (pgsync plan --live --format json --out FILE)", path, saved.Mode)
	}
	if saved.Head != now.Head {
		return nil, fmt.Errorf("saved plan %s is stale: it was made at commit %s, --ref is now %s; plan again", path, desired.ShortSHA(saved.Head), desired.ShortSHA(now.Head))
	}
	if err := sameImages(saved, now); err != nil {
		return nil, fmt.Errorf("saved plan %s is stale: %w; plan again", path, err)
	}
	current := map[cluster.Key]plan.ClusterPlan{}
	for _, c := range now.Clusters {
		current[cluster.Key{Namespace: c.Namespace, Name: c.Name}] = c
	}
	live := map[cluster.Key]*plan.ObservedCluster{}
	for i, o := range observed.Clusters {
		if o.Spec != nil {
			live[o.Spec.Key()] = &observed.Clusters[i]
		}
	}
	desiredOf := map[cluster.Key]*cluster.Cluster{}
	for _, c := range want {
		desiredOf[c.Key()] = c
	}
	expect := map[cluster.Key][]plan.Step{}
	var stale []string
	for _, c := range saved.Clusters {
		key := cluster.Key{Namespace: c.Namespace, Name: c.Name}
		cur, ok := current[key]
		delete(current, key)
		switch {
		case !ok:
			stale = append(stale, key.String()+" is no longer planned")
		case cur.Observed != c.Observed:
			stale = append(stale, key.String()+" has changed since (its observed state differs)")
		case !sameSteps(cur.Steps, c.Steps) && !plan.SavedStepsStand(live[key], desiredOf[key], cur.Steps, c.Steps):
			stale = append(stale, key.String()+" would now be planned differently")
		}
		expect[key] = c.Steps
	}
	for key := range current {
		stale = append(stale, key.String()+" was not in the saved plan")
	}
	sort.Strings(stale)
	if len(stale) > 0 {
		return nil, fmt.Errorf("saved plan %s is stale: %s; plan again", path, strings.Join(stale, "; "))
	}
	return expect, nil
}

// sameImages refuses a saved plan whose image verdicts are not those of
// now: a tag that moved since (another digest, even a signed one, is not
// what was reviewed), a policy given at one time and not the other.
func sameImages(saved, now *plan.Plan) error {
	var moved []string
	compare := func(what string, s, n *plan.ImageCheck) {
		switch {
		case s == nil && n == nil:
		case s == nil:
			moved = append(moved, what+" was planned without --image-policy")
		case n == nil:
			moved = append(moved, what+" was planned with an image policy: pass --image-policy")
		case s.Pinned != n.Pinned:
			moved = append(moved, fmt.Sprintf("%s: %s moved since the plan (%s → %s)", what, s.Image, orNone(s.Digest), orNone(n.Digest)))
		}
	}
	compare("the instance image", saved.InstanceImage, now.InstanceImage)
	current := map[cluster.Key]*plan.ImageCheck{}
	for _, c := range now.Clusters {
		current[cluster.Key{Namespace: c.Namespace, Name: c.Name}] = c.Image
	}
	for _, c := range saved.Clusters {
		key := cluster.Key{Namespace: c.Namespace, Name: c.Name}
		if n, ok := current[key]; ok {
			compare(key.String()+"'s image", c.Image, n)
		}
	}
	if len(moved) > 0 {
		return errors.New(strings.Join(moved, "; "))
	}
	return nil
}

func orNone(digest string) string {
	if digest == "" {
		return "no digest"
	}
	return digest
}

func sameSteps(a, b []plan.Step) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Action != b[i].Action || a[i].Instance != b[i].Instance || a[i].To != b[i].To {
			return false
		}
	}
	return true
}

// summarize prints one line per outcome and picks the exit status.
func summarize(w io.Writer, results []apply.ClusterResult) error {
	counts := map[apply.Outcome]int{}
	for _, r := range results {
		counts[r.Outcome]++
	}
	var parts []string
	for _, o := range []apply.Outcome{apply.Converged, apply.Orphaned, apply.AwaitingApproval, apply.Halted, apply.Failed} {
		if counts[o] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", counts[o], o))
		}
	}
	fmt.Fprintf(w, "\nApply: %s.\n", strings.Join(parts, ", "))
	switch {
	case counts[apply.Halted]+counts[apply.Failed] > 0:
		return exitError{code: 1}
	case counts[apply.AwaitingApproval] > 0:
		return exitError{code: exitAwaitingApproval}
	}
	return nil
}

// confirm asks as Terraform does: only "yes" goes on.
func confirm(in io.Reader, out io.Writer) (bool, error) {
	if f, ok := in.(*os.File); ok {
		if info, err := f.Stat(); err != nil || info.Mode()&os.ModeCharDevice == 0 {
			return false, errors.New("standard input is not a terminal: pass --auto-approve to apply without confirmation")
		}
	}
	fmt.Fprint(out, "\nDo you want to perform these actions? Only 'yes' will be accepted.\n  Enter a value: ")
	line, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return false, err
	}
	return strings.TrimSpace(line) == "yes", nil
}

// progress prints each step as it starts and ends; on a terminal a live
// line shows the step in flight with its elapsed time.
type progress struct {
	w    io.Writer
	tty  bool
	mu   sync.Mutex
	quit chan struct{}
	wg   sync.WaitGroup
}

func newProgress(w io.Writer, tty bool) *progress { return &progress{w: w, tty: tty} }

func (p *progress) event(ev apply.ProgressEvent) {
	p.stop()
	p.mu.Lock()
	defer p.mu.Unlock()
	label := fmt.Sprintf("  %d. %s", ev.Number, stepLine(ev.Step))
	if !ev.Finished {
		if !p.tty {
			fmt.Fprintf(p.w, "%s …\n", label)
			return
		}
		p.quit = make(chan struct{})
		p.wg.Add(1)
		start := time.Now()
		go func(quit chan struct{}) {
			defer p.wg.Done()
			tick := time.NewTicker(time.Second)
			defer tick.Stop()
			for {
				p.mu.Lock()
				fmt.Fprintf(p.w, "\r\033[K%s … %s", label, time.Since(start).Round(time.Second))
				p.mu.Unlock()
				select {
				case <-quit:
					return
				case <-tick.C:
				}
			}
		}(p.quit)
		return
	}
	if p.tty {
		fmt.Fprint(p.w, "\r\033[K")
	}
	status := "done"
	if ev.Err != nil {
		status = "FAILED"
	}
	fmt.Fprintf(p.w, "%s: %s in %s\n", label, status, ev.Elapsed.Round(10*time.Millisecond))
}

// stop ends the live line, if any.
func (p *progress) stop() {
	p.mu.Lock()
	q := p.quit
	p.quit = nil
	p.mu.Unlock()
	if q != nil {
		close(q)
		p.wg.Wait()
	}
}

func stepLine(s plan.Step) string {
	out := string(s.Action)
	if s.Instance != "" {
		out += " " + s.Instance
	}
	if s.Role != "" {
		out += " (" + string(s.Role) + ")"
	}
	if s.From != "" || s.To != "" {
		out += ": " + s.From + " → " + s.To
	}
	return out
}
