package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	pc "github.com/pgsync/pgsync/internal/podcontract"
)

// TestApplyWALStorage: a cluster with spec.walStorage, created by pgsync
// apply on real pods, keeps pg_wal on each instance's own pgwal claim
// (PGDATA/pg_wal, on the data volume, links into the WAL volume, which
// holds the segments: the primary's initdb and the standby's
// pg_basebackup both used --waldir), and a WAL size grown in Git grows
// every WAL claim through the real controller-manager.
func TestApplyWALStorage(t *testing.T) {
	t.Parallel() // a busy node changes none of its assertions (doc.go)
	ctx, env, repo := websiteTest(t, 15*time.Minute)
	cs, ns := env.Client, env.Namespace
	wal := func(size string) string {
		return websiteYAML(ns, image1518, 2, "  walStorage:\n    storageClass: standard\n    size: "+size+"\n")
	}
	createWebsite(ctx, t, env, repo, wal("1Gi"), "website with a WAL volume")

	for i := 0; i < 2; i++ {
		inst := fmt.Sprintf("website-%d", i)
		checkClaimOnStandard(ctx, t, cs, ns, pc.DataVolume+"-"+inst)
		checkClaimOnStandard(ctx, t, cs, ns, pc.WALVolume+"-"+inst)
		dir := func(claim string) string {
			pvc, err := cs.CoreV1().PersistentVolumeClaims(ns).Get(ctx, claim, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			pv, err := cs.CoreV1().PersistentVolumes().Get(ctx, pvc.Spec.VolumeName, metav1.GetOptions{})
			if err != nil || pv.Spec.Local == nil {
				t.Fatalf("volume of %s: %v (%+v)", claim, err, pv)
			}
			return pv.Spec.Local.Path // the test runs on the node
		}
		data, walDir := dir(pc.DataVolume+"-"+inst), dir(pc.WALVolume+"-"+inst)
		link, err := os.Readlink(filepath.Join(data, strings.TrimPrefix(pc.PGData, pc.DataMount+"/"), "pg_wal"))
		if err != nil || link != pc.WALDir {
			t.Errorf("%s: PGDATA/pg_wal → %q (%v), want a symlink to %s", inst, link, err, pc.WALDir)
		}
		segs, _ := filepath.Glob(filepath.Join(walDir, strings.TrimPrefix(pc.WALDir, pc.WALMount+"/"), strings.Repeat("[0-9A-F]", 24)))
		if len(segs) == 0 {
			t.Errorf("%s: no WAL segment on its WAL volume (%s)", inst, walDir)
		}
	}

	repo.commit(wal("2Gi"), "WAL volume 2Gi")
	if out, code := pgsyncApply(ctx, t, env, repo); code != 0 || !strings.Contains(out, "resize-wal-volume") {
		t.Fatalf("apply (WAL grow) exited %d, want 0 with resize-wal-volume steps:\n%s", code, out)
	}
	want := resource.MustParse("2Gi")
	for i := 0; i < 2; i++ {
		name := fmt.Sprintf("%s-website-%d", pc.WALVolume, i)
		pvc, err := cs.CoreV1().PersistentVolumeClaims(ns).Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got := pvc.Status.Capacity[corev1.ResourceStorage]; got.Cmp(want) < 0 {
			t.Errorf("claim %s: capacity %s after the grow, want 2Gi", name, got.String())
		}
	}
}
