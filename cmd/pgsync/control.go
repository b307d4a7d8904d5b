package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/pgsync/pgsync/internal/apply"
	"github.com/pgsync/pgsync/internal/cluster"
	"github.com/pgsync/pgsync/internal/kube"
	"github.com/pgsync/pgsync/internal/observe"
	"github.com/pgsync/pgsync/internal/plan"
	pc "github.com/pgsync/pgsync/internal/podcontract"
	"github.com/pgsync/pgsync/internal/revision"
)

func init() { commands = append(commands, newApproveCmd, newSwitchoverCmd, newReconcileCmd) }

// parseKey reads NAMESPACE/NAME.
func parseKey(s string) (cluster.Key, error) {
	ns, name, ok := strings.Cut(s, "/")
	if !ok || ns == "" || name == "" || strings.Contains(name, "/") {
		return cluster.Key{}, fmt.Errorf("%q: want NAMESPACE/NAME", s)
	}
	return cluster.Key{Namespace: ns, Name: name}, nil
}

// target reads the NAMESPACE/NAME argument and connects.
func target(ka kubeArgs, arg string) (cluster.Key, *kubeClients, error) {
	key, err := parseKey(arg)
	if err != nil {
		return key, nil, err
	}
	k, err := ka.connect()
	return key, k, err
}

// annotate sets one annotation of a cluster's StatefulSet (a merge patch
// under its own field manager: pgsync's server-side applies keep it).
func annotate(ctx context.Context, k *kubeClients, ns, name, annotation, value, manager string) error {
	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, annotation, value)
	_, err := k.typed.AppsV1().StatefulSets(ns).Patch(ctx, name, types.MergePatchType, []byte(patch), metav1.PatchOptions{FieldManager: manager})
	return err
}

// liveCluster observes one cluster.
func liveCluster(ctx context.Context, a kubeArgs, k *kubeClients, key cluster.Key) (*observe.Cluster, error) {
	opts := a.observeOptions(k)
	opts.Namespace = key.Namespace
	f, err := observe.Observe(ctx, k.typed, opts)
	if err != nil {
		return nil, err
	}
	for i := range f.Clusters {
		if f.Clusters[i].Key() == key {
			return &f.Clusters[i], nil
		}
	}
	return nil, fmt.Errorf("no cluster %s managed by pgsync", key)
}

func newApproveCmd() *cobra.Command {
	var ka kubeArgs
	cmd := &cobra.Command{
		Use:   "approve NAMESPACE/NAME",
		Short: "Approve the primary's update of a supervised cluster",
		Long: `Approve records, in the StatefulSet's pgsync.io/approved-revision annotation,
that the primary of a cluster with primaryUpdateStrategy: supervised may be
updated to the revision last applied. The next apply (or the daemon) goes
on with the switchover (or the in-place restart). A later change of the
spec needs a new approval.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, pos []string) error {
			key, k, err := target(ka, pos[0])
			if err != nil {
				return err
			}
			live, err := liveCluster(cmd.Context(), ka, k, key)
			if err != nil {
				return err
			}
			rev := revision.Restart(live.Observed.Spec)
			sts := live.StatefulSet
			if err := annotate(cmd.Context(), k, sts.Namespace, sts.Name, pc.AnnApprovedRevision, rev, "pgsync-approve"); err != nil {
				return fmt.Errorf("approve %s: %w", key, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: the primary's update to revision %s is approved\n", key, rev)
			return nil
		},
	}
	ka.register(cmd)
	return cmd
}

func newSwitchoverCmd() *cobra.Command {
	var (
		ka           kubeArgs
		to           string
		timeout      time.Duration
		lockDuration time.Duration
	)
	cmd := &cobra.Command{
		Use:   "switchover NAMESPACE/NAME [--to NAME-N]",
		Short: "Move the primary to a standby now, with no lost commit",
		Long: `Switchover moves a cluster's primary to --to (default: the ready standby
with the least lag; with synchronous replication one the primary lists in
synchronous_standby_names) through the same protocol as a rollout: the target must
be a ready standby streaming from the primary and nearly caught up; the old
primary checkpoints, stops and publishes its final LSN; the target replays
it, promotes and takes NAME-rw; the old primary rejoins as a standby.
Refused, with the reason, when a precondition does not hold.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, pos []string) error {
			key, err := parseKey(pos[0])
			if err != nil {
				return err
			}
			if err := apply.CheckLockDuration(lockDuration); err != nil {
				return err
			}
			k, err := ka.connect()
			if err != nil {
				return err
			}
			live, err := liveCluster(cmd.Context(), ka, k, key)
			if err != nil {
				return err
			}
			target := to
			if target == "" {
				if target, err = bestStandby(live); err != nil {
					return err
				}
			}
			opts := ka.observeOptions(k)
			// Random: the switchover applies every object, and that creates
			// any missing Secret (without it, a nil reader panicked).
			exec := &apply.Executor{Client: k.typed, Dynamic: k.dynamic, Status: opts.Status, StepTimeout: timeout, Random: rand.Reader,
				LockDuration: lockDuration}
			host, _ := os.Hostname()
			start := time.Now()
			from := kube.NamesOf(live.Observed.Spec).Instance(live.Observed.Primary)
			fmt.Fprintf(cmd.OutOrStdout(), "%s: switchover %s → %s …\n", key, from, target)
			if err := exec.Switchover(cmd.Context(), live, target, fmt.Sprintf("pgsync-switchover %s/%d", host, os.Getpid())); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: %s is the primary (%s)\n", key, target, time.Since(start).Round(10*time.Millisecond))
			return nil
		},
	}
	ka.register(cmd)
	cmd.Flags().StringVar(&to, "to", "", "the new primary (default: the ready standby with the least lag)")
	cmd.Flags().DurationVar(&timeout, "timeout", 2*time.Minute, "give up waiting for the new primary after this long")
	cmd.Flags().DurationVar(&lockDuration, "lock-duration", apply.DefaultLockDuration, "how long the cluster's apply lock (Lease NAME-apply) outlives a pgsync killed while holding it (whole seconds, 6s to 10m)")
	return cmd
}

// bestStandby is the planner's choice of a switchover target: the ready
// standby with the least lag, lowest ordinal — with synchronous
// replication one the primary lists in synchronous_standby_names.
func bestStandby(live *observe.Cluster) (string, error) {
	ordinal, ok := plan.SwitchoverTarget(&live.Observed, "", len(live.Instances))
	if ok {
		for _, in := range live.Instances {
			if in.Ordinal == ordinal {
				return in.Name, nil
			}
		}
	}
	return "", fmt.Errorf("switchover of %s refused: no ready standby", live.Key())
}

func newReconcileCmd() *cobra.Command {
	var ka kubeArgs
	cmd := &cobra.Command{
		Use:   "reconcile NAMESPACE/NAME",
		Short: "Ask the running daemon for a cycle now",
		Long: `Reconcile asks a running pgsync run for a cycle at once, instead of at its
next --interval: it fetches Git and gives every cluster its next step. It
writes the current time into the pgsync.io/reconcile annotation of the
cluster's StatefulSet, which the daemon's leader watches (kubectl annotate
with any new value does the same). It needs patch on that StatefulSet, as
pgsync approve does, and changes nothing else.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, pos []string) error {
			key, k, err := target(ka, pos[0])
			if err != nil {
				return err
			}
			sts, err := k.typed.AppsV1().StatefulSets(key.Namespace).Get(cmd.Context(), key.Name, metav1.GetOptions{})
			if err != nil || sts.Labels[pc.LabelManagedBy] != pc.ManagedBy {
				return fmt.Errorf("no cluster %s managed by pgsync", key)
			}
			at := time.Now().UTC().Format(time.RFC3339Nano)
			if err := annotate(cmd.Context(), k, sts.Namespace, sts.Name, pc.AnnReconcile, at, "pgsync-reconcile"); err != nil {
				return fmt.Errorf("reconcile %s: %w", key, err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s: reconcile requested at %s; a running pgsync run starts a cycle now\n", key, at)
			return nil
		},
	}
	ka.register(cmd)
	return cmd
}
