package e2e

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/pgsync/pgsync/internal/podcontract"
	"github.com/pgsync/pgsync/test/clusterfile"
	"github.com/pgsync/pgsync/test/kubeenv"
)

// TestDaemonFleetWaves: one commit updates 10 clusters; `pgsync run
// --max-rolling 3` never has more than 3 of them restarting at once, and
// does run 3 at once (single-instance clusters: a rollout is one restart).
func TestDaemonFleetWaves(t *testing.T) {
	t.Parallel() // a busy node changes none of its assertions (doc.go)
	env := kubeenv.Cluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	cs, ns := env.Client, env.Namespace
	const n, maxRolling = 10, 3
	files := func(image string) map[string]string {
		out := map[string]string{}
		for i := range n {
			name := fmt.Sprintf("db%d", i)
			out[name+".yaml"] = clusterfile.Cluster{APIVersion: "postgresql.cnpg.io/v1", Name: name, Namespace: ns, Image: image, Instances: 1}.YAML()
		}
		return out
	}
	repo := newGitRepo(t, ns)
	repo.commitFiles("10 clusters at 15.18", files(image1518))
	d := startDaemon(ctx, t, env, repo, "2s", "--max-rolling", fmt.Sprint(maxRolling))
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("pgsync run log:\n%s", lastLines(d.out.String(), 80))
		}
	})
	converged := func() bool {
		st, err := d.status(t)
		if err != nil || len(st.Last.Clusters) != n {
			return false
		}
		for _, c := range st.Last.Clusters {
			if c.Outcome != "converged" {
				return false
			}
		}
		return true
	}
	start := time.Now()
	waitUntil(ctx, t, "10 clusters created", time.Second, converged)
	t.Logf("10 clusters created in %.1f s", time.Since(start).Seconds())

	w := watchRolling(ctx, cs, ns, image1520)
	repo.commitFiles("10 clusters at 15.20", files(image1520))
	start = time.Now()
	waitUntil(ctx, t, "10 clusters at 15.20", time.Second, func() bool { return converged() && podsAt(ctx, cs, ns, podcontract.LabelCluster, image1520, n) })
	took := time.Since(start)
	most, samples := w.stop()
	t.Logf("10 clusters rolled in %.1f s; at most %d restarting at once (%d samples)", took.Seconds(), most, samples)
	if most > maxRolling {
		t.Errorf("%d clusters restarting at once, want at most --max-rolling %d", most, maxRolling)
	}
	if most < maxRolling {
		t.Errorf("at most %d clusters restarting at once: the waves did not use --max-rolling %d", most, maxRolling)
	}
}

// rollingWatch counts, every 100 ms, the clusters whose only pod is
// being replaced: not yet on the new image and Ready, but no longer the
// old Ready pod either (deleting, gone, or new and not Ready).
type rollingWatch struct {
	cancel  context.CancelFunc
	done    chan struct{}
	mu      sync.Mutex
	most    int
	samples int
}

func watchRolling(ctx context.Context, cs kubernetes.Interface, ns, image string) *rollingWatch {
	ctx, cancel := context.WithCancel(ctx)
	w := &rollingWatch{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for ctx.Err() == nil {
			list, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{LabelSelector: podcontract.LabelCluster})
			if err == nil {
				present := map[string]bool{}
				rolling := 0
				for _, p := range list.Items {
					present[p.Labels[podcontract.LabelCluster]] = true
					old := p.Spec.Containers[0].Image != image
					if p.DeletionTimestamp != nil || podProblem(p) != "" && !old {
						rolling++
					}
				}
				for i := range 10 {
					if !present[fmt.Sprintf("db%d", i)] {
						rolling++ // between the old pod and the new one
					}
				}
				w.mu.Lock()
				w.most, w.samples = max(w.most, rolling), w.samples+1
				w.mu.Unlock()
			}
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	return w
}

func (w *rollingWatch) stop() (most, samples int) {
	w.cancel()
	<-w.done
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.most, w.samples
}
