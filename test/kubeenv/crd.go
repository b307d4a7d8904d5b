package kubeenv

import (
	"context"
	"os"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"
)

var crdResource = schema.GroupVersionResource{Group: "apiextensions.k8s.io", Version: "v1", Resource: "customresourcedefinitions"}

// InstallCRD creates the CustomResourceDefinition of the YAML file path
// (relative to this package: testdata/NAME.yaml) and waits until
// discovery serves its kind; the test's cleanup deletes it and waits until
// discovery no longer does. A CRD is cluster-wide: a test that installs
// one must not run in parallel with tests that need the kind absent.
func InstallCRD(t testing.TB, cfg *rest.Config, path string) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var obj map[string]any
	if err := yaml.Unmarshal(raw, &obj); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	u := &unstructured.Unstructured{Object: obj}
	group, _, _ := unstructured.NestedString(obj, "spec", "group")
	plural, _, _ := unstructured.NestedString(obj, "spec", "names", "plural")
	versions, _, _ := unstructured.NestedSlice(obj, "spec", "versions")
	version := ""
	if len(versions) > 0 {
		version, _, _ = unstructured.NestedString(versions[0].(map[string]any), "name")
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	disc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	crds := dyn.Resource(crdResource)
	if _, err := crds.Create(ctx, u, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create CRD %s: %v", u.GetName(), err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := crds.Delete(ctx, u.GetName(), metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
			t.Errorf("delete CRD %s: %v", u.GetName(), err)
		}
		waitServed(ctx, t, disc, group+"/"+version, plural, false)
		for {
			if _, err := crds.Get(ctx, u.GetName(), metav1.GetOptions{}); apierrors.IsNotFound(err) {
				return
			}
			select {
			case <-ctx.Done():
				t.Errorf("CRD %s still exists", u.GetName())
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	})
	waitServed(ctx, t, disc, group+"/"+version, plural, true)
}

// waitServed waits until discovery serves resource of groupVersion (or,
// with !want, until it does not).
func waitServed(ctx context.Context, t testing.TB, disc discovery.DiscoveryInterface, groupVersion, resource string, want bool) {
	t.Helper()
	for {
		served := false
		if list, err := disc.ServerResourcesForGroupVersion(groupVersion); err == nil {
			for _, r := range list.APIResources {
				served = served || r.Name == resource
			}
		}
		if served == want {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("discovery: %s %s served %v, want %v", groupVersion, resource, served, want)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
