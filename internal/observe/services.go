package observe

import (
	"context"
	"fmt"
	"slices"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"

	"github.com/pgsync/pgsync/internal/cluster"
	"github.com/pgsync/pgsync/internal/kube"
	pc "github.com/pgsync/pgsync/internal/podcontract"
)

var servicesResource = schema.GroupVersionResource{Version: "v1", Resource: "services"}

// ownedServices returns the names of the Services labelled as pgsync's
// of cluster name in namespace.
type ownedServices func(ctx context.Context, namespace, name string) ([]string, error)

// listServices lists them with one List.
func listServices(client dynamic.Interface) ownedServices {
	return func(ctx context.Context, namespace, name string) ([]string, error) {
		list, err := client.Resource(servicesResource).Namespace(namespace).List(ctx, metav1.ListOptions{LabelSelector: kube.ServiceSelector(name)})
		if err != nil {
			return nil, fmt.Errorf("list Services of %s/%s: %w", namespace, name, err)
		}
		return serviceNames(list.Items, name), nil
	}
}

func serviceNames(items []unstructured.Unstructured, name string) []string {
	var out []string
	for i := range items {
		l := items[i].GetLabels()
		if l[pc.LabelManagedBy] == pc.ManagedBy && l[pc.LabelCluster] == name {
			out = append(out, items[i].GetName())
		}
	}
	slices.Sort(out)
	return out
}

// leftServices is the drift of the Services pgsync owns for spec that it
// no longer renders — disabled by spec.managed.services, or an additional
// one removed — when the apply that changed the spec did not get to
// delete them: "Service NAME: not in the spec". The next objects step
// deletes them.
func leftServices(ctx context.Context, owned ownedServices, spec *cluster.Cluster) ([]string, error) {
	names, err := owned(ctx, spec.Metadata.Namespace, spec.Metadata.Name)
	if err != nil {
		return nil, err
	}
	rendered := spec.ServiceNames()
	var out []string
	for _, n := range names {
		if !slices.Contains(rendered, n) {
			out = append(out, "Service "+n+": not in the spec")
		}
	}
	return out, nil
}

// ObjectDrift is the drift of one rendered object (Drift's, for one):
// the paths a server-side apply would change in the live object, or
// "KIND NAME: missing". Apply uses it to tell whether a Service of
// updateStrategy replace differs from what pgsync renders.
func ObjectDrift(ctx context.Context, client dynamic.Interface, obj runtime.Object) ([]string, error) {
	return driftOf(ctx, client, []runtime.Object{obj}, getLive(client), nil)
}
