package observe_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/pgsync/pgsync/internal/cluster"
	"github.com/pgsync/pgsync/internal/kube"
	"github.com/pgsync/pgsync/internal/observe"
	pc "github.com/pgsync/pgsync/internal/podcontract"
	"github.com/pgsync/pgsync/test/kubeenv"
	"github.com/pgsync/pgsync/test/podsim"
)

// benchFleet is the benchmark's 100 clusters, created once per test
// process (a bare API server never finishes deleting a namespace, so a
// second set would add to the first): -count=N reuses them.
var benchFleet struct {
	once sync.Once
	srv  *podsim.Servers
	err  error
}

const benchClusters, benchInstances = 100, 3

// setupFleet creates 100 clusters × 3 instances in 10 namespaces — every
// object pgsync renders, the pods, claims and Lease holders, and a /status
// server per pod on 127.100.C.N — concurrently.
func setupFleet(b *testing.B, e *apiEnv) (*podsim.Servers, error) {
	benchFleet.once.Do(func() {
		var nss []string
		for i := 0; i < benchClusters/10; i++ {
			nss = append(nss, kubeenv.Namespace(&keep{b}, e.cfg))
		}
		var ips []string
		for c := 0; c < benchClusters; c++ {
			for n := 0; n < benchInstances; n++ {
				ips = append(ips, fmt.Sprintf("127.100.%d.%d", c, n+1))
			}
		}
		srv, err := podsim.Serve(ips, 0)
		if err != nil {
			benchFleet.err = err
			return
		}
		benchFleet.srv = srv
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		var specs []*cluster.Cluster
		for c := 0; c < benchClusters; c++ {
			specs = append(specs, loadCluster(b, nss[c%len(nss)], fmt.Sprintf("db%02d", c), benchInstances))
		}
		sem := make(chan struct{}, 16)
		errs := make([]error, benchClusters)
		var wg sync.WaitGroup
		for c, spec := range specs {
			wg.Add(1)
			sem <- struct{}{}
			go func() {
				defer func() { <-sem; wg.Done() }()
				errs[c] = e.deployErr(ctx, srv, spec, c)
			}()
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				benchFleet.err = err
				return
			}
		}
	})
	return benchFleet.srv, benchFleet.err
}

// keep is a testing.TB whose cleanups never run: the fleet outlives the
// benchmark run that created it.
type keep struct{ testing.TB }

func (keep) Cleanup(func()) {}

// deployErr is deploy for a goroutine: errors, not t.Fatal.
func (e *apiEnv) deployErr(ctx context.Context, srv *podsim.Servers, c *cluster.Cluster, index int) error {
	o, err := kube.Render(c, kube.Options{InstanceImage: instanceImage, TargetPrimary: kube.NamesOf(c).Instance(0)})
	if err != nil {
		return err
	}
	if err := podsim.Apply(ctx, e.dyn, o); err != nil {
		return err
	}
	sts, err := e.cs.AppsV1().StatefulSets(c.Metadata.Namespace).Get(ctx, c.Metadata.Name, metav1.GetOptions{})
	if err != nil {
		return err
	}
	for n := 0; n < benchInstances; n++ {
		ip := fmt.Sprintf("127.100.%d.%d", index, n+1)
		if err := podsim.CreateClaim(ctx, e.cs, sts, n, "", ""); err != nil {
			return err
		}
		if _, err := podsim.CreatePod(ctx, e.cs, sts, n, podsim.Pod{IP: ip, Ready: true}); err != nil {
			return err
		}
		st := standby(c, n, "0/3000000", 0)
		if n == 0 {
			st = primary(c, 0, "0/3000000")
		}
		srv.Set(ip, *st)
	}
	return podsim.HoldLease(ctx, e.cs, c.Metadata.Namespace, kube.NamesOf(c).Lease(), kube.NamesOf(c).Instance(0))
}

// BenchmarkObserve100Clusters times one observation of 100 clusters × 3
// instances (every namespace, four Lists, 300 /status reads), with fresh
// clients each time as a CLI run has; the baseline is the same four List
// calls alone. Target (issue 7): ≤ 2 s per observation.
func BenchmarkObserve100Clusters(b *testing.B) {
	e := newAPIEnv(b)
	srv, err := setupFleet(b, e)
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	// The client settings of the CLI (cmd/pgsync/kube.go).
	cli := rest.CopyConfig(e.cfg)
	cli.QPS, cli.Burst = 100, 200
	fresh := func(b *testing.B) kubernetes.Interface {
		cs, err := kubernetes.NewForConfig(cli)
		if err != nil {
			b.Fatal(err)
		}
		return cs
	}
	b.Run("baseline-four-lists", func(b *testing.B) {
		managed := metav1.ListOptions{LabelSelector: labels.SelectorFromSet(labels.Set{pc.LabelManagedBy: pc.ManagedBy}).String()}
		byCluster := metav1.ListOptions{LabelSelector: pc.LabelCluster}
		for b.Loop() {
			cs := fresh(b)
			var wg sync.WaitGroup
			errs := make([]error, 4)
			wg.Add(4)
			go func() { defer wg.Done(); _, errs[0] = cs.AppsV1().StatefulSets("").List(ctx, managed) }()
			go func() { defer wg.Done(); _, errs[1] = cs.CoreV1().Pods("").List(ctx, byCluster) }()
			go func() { defer wg.Done(); _, errs[2] = cs.CoreV1().PersistentVolumeClaims("").List(ctx, byCluster) }()
			go func() { defer wg.Done(); _, errs[3] = cs.CoordinationV1().Leases("").List(ctx, managed) }()
			wg.Wait()
			for _, err := range errs {
				if err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("observe", func(b *testing.B) {
		for b.Loop() {
			tr := http.DefaultTransport.(*http.Transport).Clone()
			f, err := observe.Observe(ctx, fresh(b), observe.Options{
				Status: observe.DirectStatus{Client: &http.Client{Transport: tr}, Port: srv.Port()}})
			tr.CloseIdleConnections()
			if err != nil {
				b.Fatal(err)
			}
			ready := 0
			for _, c := range f.Clusters {
				for _, in := range c.Observed.Instances {
					if in.Ready {
						ready++
					}
				}
			}
			if len(f.Clusters) < benchClusters || ready < benchClusters*benchInstances {
				b.Fatalf("observed %d clusters, %d ready instances; want %d and %d", len(f.Clusters), ready, benchClusters, benchClusters*benchInstances)
			}
		}
	})
	// Not part of the target: what `pgsync plan --live` adds to the
	// observation (a GET and a dry-run apply per object, 1,300 objects).
	b.Run("find-drift", func(b *testing.B) {
		f, err := observe.Observe(ctx, e.cs, observe.Options{})
		if err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			dyn, err := dynamic.NewForConfig(cli)
			if err != nil {
				b.Fatal(err)
			}
			if err := f.FindDrift(ctx, dyn, nil); err != nil {
				b.Fatal(err)
			}
		}
		for _, c := range f.Clusters {
			if len(c.Observed.Drift) != 0 {
				b.Fatalf("%s: drift %q", c.Key(), c.Observed.Drift)
			}
		}
	})
}
