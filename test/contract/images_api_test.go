package contract

import (
	"context"
	"fmt"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/pgsync/pgsync/internal/cluster"
	"github.com/pgsync/pgsync/internal/kube"
	pc "github.com/pgsync/pgsync/internal/podcontract"
	"github.com/pgsync/pgsync/test/kubeenv"
)

const catalogSpec = `apiVersion: postgresql.cnpg.io/v1
kind: Cluster
metadata:
  name: cat
  namespace: %s
spec:
  instances: 2
  imageCatalogRef:
    apiGroup: postgresql.cnpg.io
    kind: ImageCatalog
    name: postgresql
    major: 16
  storage: {size: 1Gi}
---
apiVersion: postgresql.cnpg.io/v1
kind: ImageCatalog
metadata:
  name: postgresql
  namespace: %[1]s
spec:
  images:
    - major: 16
      image: %s
`

// TestCatalogImageRendered: a Cluster with imageCatalogRef runs the
// catalog's image. Its objects, applied to a kube-apiserver, carry that
// image in the postgres container and in the applied spec that observation
// reads back; a changed catalog changes the StatefulSet's template.
func TestCatalogImageRendered(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a kube-apiserver")
	}
	ctx := context.Background()
	cfg := kubeenv.APIServer(t)
	ns := kubeenv.Namespace(t, cfg)
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, image := range []string{"ghcr.io/cloudnative-pg/postgresql:16.10-minimal-trixie", "ghcr.io/cloudnative-pg/postgresql:16.11-minimal-trixie"} {
		set, err := cluster.Load([]cluster.File{{Path: "cat.yaml", Data: fmt.Appendf(nil, catalogSpec, ns, image)}})
		if err != nil {
			t.Fatal(err)
		}
		c := set.Clusters[0]
		objs, err := kube.Render(c, kube.Options{InstanceImage: instImage, TargetPrimary: kube.TargetPrimary(c, nil)})
		if err != nil {
			t.Fatal(err)
		}
		for _, o := range objs.List() {
			if _, err := kube.Apply(ctx, dyn, o, kube.ApplyOptions{Force: true}); err != nil {
				t.Fatal(err)
			}
		}
		sts, err := cs.AppsV1().StatefulSets(ns).Get(ctx, "cat", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var got string
		for _, ctr := range sts.Spec.Template.Spec.Containers {
			if ctr.Name == pc.ContainerPostgres {
				got = ctr.Image
			}
		}
		if got != image {
			t.Errorf("postgres container image = %q, want the catalog's %q", got, image)
		}
		applied, ok, err := kube.ReadAppliedSpec(sts)
		if err != nil || !ok {
			t.Fatalf("applied spec: %v %v", ok, err)
		}
		if applied.Spec.ImageName != image || applied.Spec.ImageCatalogRef == nil || applied.Spec.ImageCatalogRef.Major != 16 {
			t.Errorf("applied spec: image %q, ref %+v", applied.Spec.ImageName, applied.Spec.ImageCatalogRef)
		}
		if strings.Contains(sts.Annotations[pc.AnnAppliedSpec], "ImageFrom") {
			t.Errorf("applied spec carries ImageFrom: %s", sts.Annotations[pc.AnnAppliedSpec])
		}
	}
}
