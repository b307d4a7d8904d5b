package apply

import (
	"context"
	"fmt"
	"time"

	coordv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pgsync/pgsync/internal/cluster"
	"github.com/pgsync/pgsync/internal/kube"
	pc "github.com/pgsync/pgsync/internal/podcontract"
)

// DefaultLockDuration is how long an apply Lease stays valid without
// renewal (Executor.LockDuration, --lock-duration): a killed apply blocks
// the next one at most this long.
const DefaultLockDuration = 30 * time.Second

// MinLockDuration and MaxLockDuration bound --lock-duration: the Lease is
// renewed every third of it, so a shorter one would expire under an API
// server slow for a second or two; a longer one only blocks longer.
const (
	MinLockDuration = 6 * time.Second
	MaxLockDuration = 10 * time.Minute
)

// CheckLockDuration refuses a lock duration the Lease cannot carry (whole
// seconds) or out of bounds.
func CheckLockDuration(d time.Duration) error {
	if d%time.Second != 0 || d < MinLockDuration || d > MaxLockDuration {
		return fmt.Errorf("--lock-duration %s: must be whole seconds from %s to %s", d, MinLockDuration, MaxLockDuration)
	}
	return nil
}

func (e *Executor) lockDuration() time.Duration {
	if e.LockDuration == 0 {
		return DefaultLockDuration
	}
	return e.LockDuration
}

// LockedError: another apply holds the cluster.
type LockedError struct {
	Cluster cluster.Key
	Holder  string
	Since   time.Time
	Expires time.Time
}

func (e *LockedError) Error() string {
	return fmt.Sprintf("%s is being applied by %s (since %s; its lock expires at %s unless renewed)", e.Cluster, e.Holder,
		e.Since.UTC().Format(time.RFC3339), e.Expires.UTC().Format(time.RFC3339))
}

// Lock holds a cluster's apply Lease and renews it until Release.
type Lock struct {
	e      *Executor
	lease  *coordv1.Lease
	cancel context.CancelFunc
	done   chan struct{}
}

// Acquire takes the apply Lease NAME-apply of c for owner, or fails at
// once with a *LockedError naming the holder. A Lease whose holder has
// not renewed it within its duration is taken over.
func (e *Executor) Acquire(ctx context.Context, c *cluster.Cluster, owner string) (*Lock, error) {
	now := e.now()
	leases := e.Client.CoordinationV1().Leases(c.Metadata.Namespace)
	name := kube.NamesOf(c).ApplyLock()
	dur := int32(e.lockDuration() / time.Second)
	l, err := leases.Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		l = &coordv1.Lease{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: c.Metadata.Namespace,
			Labels: map[string]string{pc.LabelManagedBy: pc.ManagedBy, pc.LabelCluster: c.Metadata.Name}}}
		l.Spec = coordv1.LeaseSpec{HolderIdentity: &owner, LeaseDurationSeconds: &dur,
			AcquireTime: &metav1.MicroTime{Time: now}, RenewTime: &metav1.MicroTime{Time: now}}
		l, err = leases.Create(ctx, l, metav1.CreateOptions{FieldManager: pc.FieldManager})
		if apierrors.IsAlreadyExists(err) {
			return e.Acquire(ctx, c, owner)
		}
		if err != nil {
			return nil, fmt.Errorf("apply lock %s: %w", c.Key(), err)
		}
	case err != nil:
		return nil, fmt.Errorf("apply lock %s: %w", c.Key(), err)
	default:
		if h := l.Spec.HolderIdentity; h != nil && *h != "" && *h != owner && l.Spec.RenewTime != nil {
			expires := l.Spec.RenewTime.Add(time.Duration(deref(l.Spec.LeaseDurationSeconds)) * time.Second)
			if now.Before(expires) {
				var since time.Time
				if l.Spec.AcquireTime != nil {
					since = l.Spec.AcquireTime.Time
				}
				return nil, &LockedError{Cluster: c.Key(), Holder: *h, Since: since, Expires: expires}
			}
		}
		l.Spec.HolderIdentity, l.Spec.LeaseDurationSeconds = &owner, &dur
		l.Spec.AcquireTime, l.Spec.RenewTime = &metav1.MicroTime{Time: now}, &metav1.MicroTime{Time: now}
		// Update carries the resourceVersion read: of two takers, one wins.
		if l, err = leases.Update(ctx, l, metav1.UpdateOptions{FieldManager: pc.FieldManager}); err != nil {
			if apierrors.IsConflict(err) {
				return e.Acquire(ctx, c, owner)
			}
			return nil, fmt.Errorf("apply lock %s: %w", c.Key(), err)
		}
	}
	rctx, cancel := context.WithCancel(context.Background())
	lk := &Lock{e: e, lease: l, cancel: cancel, done: make(chan struct{})}
	go lk.renew(rctx)
	return lk, nil
}

func deref(p *int32) int32 {
	if p == nil {
		return 0
	}
	return *p
}

// renew keeps the Lease fresh (a third of its duration).
func (lk *Lock) renew(ctx context.Context) {
	defer close(lk.done)
	leases := lk.e.Client.CoordinationV1().Leases(lk.lease.Namespace)
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(lk.e.lockDuration() / 3):
		}
		l := lk.lease.DeepCopy()
		l.Spec.RenewTime = &metav1.MicroTime{Time: lk.e.now()}
		out, err := leases.Update(ctx, l, metav1.UpdateOptions{FieldManager: pc.FieldManager})
		if err != nil {
			lk.e.logf("renew apply lock", "lease", l.Name, "error", err.Error())
			continue
		}
		lk.lease = out
	}
}

// Delete stops renewing and deletes the Lease: the cluster it locked was
// deleted (--prune), and a lock of no cluster would stay forever. Only
// this holder's Lease is deleted (a UID precondition); a conflict falls
// back to Release's re-read.
func (lk *Lock) Delete(ctx context.Context) {
	lk.cancel()
	<-lk.done
	leases := lk.e.Client.CoordinationV1().Leases(lk.lease.Namespace)
	uid := lk.lease.UID
	err := leases.Delete(ctx, lk.lease.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
	if err != nil && !apierrors.IsNotFound(err) {
		lk.e.logf("delete apply lock", "lease", lk.lease.Name, "error", err.Error())
	}
}

// Release stops renewing and frees the Lease for the next apply.
func (lk *Lock) Release(ctx context.Context) {
	lk.cancel()
	<-lk.done
	// A renewal cut off by the cancel may still have reached the server:
	// the copy held here is then stale, so a conflict re-reads the Lease
	// and clears it if this owner still holds it (seen in e2e: a released
	// lock kept its holder and refused the next command for 30 s).
	leases := lk.e.Client.CoordinationV1().Leases(lk.lease.Namespace)
	l := lk.lease.DeepCopy()
	owner := ""
	if l.Spec.HolderIdentity != nil {
		owner = *l.Spec.HolderIdentity
	}
	for try := 0; try < 5; try++ {
		empty := ""
		l.Spec.HolderIdentity = &empty
		_, err := leases.Update(ctx, l, metav1.UpdateOptions{FieldManager: pc.FieldManager})
		if err == nil {
			return
		}
		if !apierrors.IsConflict(err) {
			lk.e.logf("release apply lock", "lease", l.Name, "error", err.Error())
			return
		}
		cur, gerr := leases.Get(ctx, l.Name, metav1.GetOptions{})
		if gerr != nil || cur.Spec.HolderIdentity == nil || *cur.Spec.HolderIdentity != owner {
			return // gone, or taken over: nothing of ours to release
		}
		l = cur
	}
}
