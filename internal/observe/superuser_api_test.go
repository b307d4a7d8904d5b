package observe_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/pgsync/pgsync/internal/kube"
	pc "github.com/pgsync/pgsync/internal/podcontract"
	"github.com/pgsync/pgsync/test/kubeenv"
)

// TestAPISuperuserAccessDrift (real kube-apiserver): a params ConfigMap
// without the superuser-access key, as a pgsync from before
// enableSuperuserAccess wrote it, drifts by exactly that key — what the
// planner's "superuser access goes" warning keys on
// (plan.TestPlanSaysSuperuserAccessGoes).
func TestAPISuperuserAccessDrift(t *testing.T) {
	e := newAPIEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ns := kubeenv.Namespace(t, e.cfg)
	srv := serve(t, "127.0.5.1")
	web := loadCluster(t, ns, "web", 1)
	e.deploy(ctx, t, srv, web, kube.Options{TargetPrimary: "web-0", Commit: commit}, "web-0", []instance{
		{pod: running("127.0.5.1"), status: primary(web, 0, "0/3000000")},
	})
	drift := func(step string, want []string) {
		t.Helper()
		f := observeNS(ctx, t, e, srv, ns)
		if err := f.FindDrift(ctx, e.dyn, nil); err != nil {
			t.Fatal(err)
		}
		if d := cmp.Diff(want, find(t, f, ns, "web").Observed.Drift); d != "" {
			t.Errorf("%s: drift (-want +got):\n%s", step, d)
		}
	}
	drift("just applied", nil)

	patch := []byte(`[{"op": "remove", "path": "/data/` + pc.SuperuserAccessKey + `"}]`)
	if _, err := e.cs.CoreV1().ConfigMaps(ns).Patch(ctx, "web-params", types.JSONPatchType, patch, metav1.PatchOptions{FieldManager: "an-earlier-pgsync"}); err != nil {
		t.Fatal(err)
	}
	drift("the key removed, as before the setting", []string{"ConfigMap web-params: data." + pc.SuperuserAccessKey})
}
