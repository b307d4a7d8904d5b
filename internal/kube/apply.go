package kube

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/pgsync/pgsync/internal/cluster"
	pc "github.com/pgsync/pgsync/internal/podcontract"
)

// resources maps the kinds Render produces to their API resources.
var resources = map[schema.GroupVersionKind]string{
	{Version: "v1", Kind: "ServiceAccount"}:                                  "serviceaccounts",
	{Version: "v1", Kind: "ConfigMap"}:                                       "configmaps",
	{Version: "v1", Kind: "Service"}:                                         "services",
	{Group: "rbac.authorization.k8s.io", Version: "v1", Kind: "Role"}:        "roles",
	{Group: "rbac.authorization.k8s.io", Version: "v1", Kind: "RoleBinding"}: "rolebindings",
	{Group: "discovery.k8s.io", Version: "v1", Kind: "EndpointSlice"}:        "endpointslices",
	{Group: "coordination.k8s.io", Version: "v1", Kind: "Lease"}:             "leases",
	{Group: "policy", Version: "v1", Kind: "PodDisruptionBudget"}:            "poddisruptionbudgets",
	{Group: "apps", Version: "v1", Kind: "StatefulSet"}:                      "statefulsets",
}

// Resources are the API resources of every kind Render produces, sorted.
func Resources() []schema.GroupVersionResource {
	out := make([]schema.GroupVersionResource, 0, len(resources))
	for gvk, res := range resources {
		out = append(out, gvk.GroupVersion().WithResource(res))
	}
	slices.SortFunc(out, func(a, b schema.GroupVersionResource) int { return strings.Compare(a.String(), b.String()) })
	return out
}

// ResourceOf is the API resource of a kind Render produces.
func ResourceOf(gvk schema.GroupVersionKind) (schema.GroupVersionResource, error) {
	res, ok := resources[gvk]
	if !ok {
		return schema.GroupVersionResource{}, fmt.Errorf("unknown kind %s", gvk)
	}
	return gvk.GroupVersion().WithResource(res), nil
}

// ApplyBody turns a rendered typed object into the body of a server-side
// apply: nulls dropped (an unset field must not be sent, or pgsync would
// own it) and status removed (pgsync owns no status).
func ApplyBody(obj runtime.Object) (*unstructured.Unstructured, error) {
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(obj)
	if err != nil {
		return nil, fmt.Errorf("convert %T: %w", obj, err)
	}
	delete(m, "status")
	if spec, ok := m["spec"].(map[string]any); ok {
		if vcts, ok := spec["volumeClaimTemplates"].([]any); ok {
			for _, v := range vcts {
				if vm, ok := v.(map[string]any); ok {
					delete(vm, "status")
				}
			}
		}
		if len(spec) == 0 {
			delete(m, "spec") // the Lease: pgsync owns no spec field
		}
	}
	dropNulls(m)
	return &unstructured.Unstructured{Object: m}, nil
}

func dropNulls(v any) {
	switch t := v.(type) {
	case map[string]any:
		for k, e := range t {
			if e == nil {
				delete(t, k)
				continue
			}
			dropNulls(e)
		}
	case []any:
		for _, e := range t {
			dropNulls(e)
		}
	}
}

// ApplyOptions steer Apply.
type ApplyOptions struct {
	// DryRun asks the server to compute the result without persisting it:
	// the live plan's diff (defaults included, so they never show as drift).
	DryRun bool
	// Force takes over fields another manager changed (the normal case for
	// a controller converging to its desired state). Without it, such a
	// field is a conflict error.
	Force bool
}

// Apply sends obj as a server-side apply with field manager "pgsync" and
// returns the object the server stored (or would store, on a dry run).
func Apply(ctx context.Context, client dynamic.Interface, obj runtime.Object, opts ApplyOptions) (*unstructured.Unstructured, error) {
	body, err := ApplyBody(obj)
	if err != nil {
		return nil, err
	}
	gvk := body.GroupVersionKind()
	gvr, err := ResourceOf(gvk)
	if err != nil {
		return nil, err
	}
	ao := metav1.ApplyOptions{FieldManager: pc.FieldManager, Force: opts.Force}
	if opts.DryRun {
		ao.DryRun = []string{metav1.DryRunAll}
	}
	out, err := client.Resource(gvr).Namespace(body.GetNamespace()).Apply(ctx, body.GetName(), body, ao)
	if err != nil {
		return nil, fmt.Errorf("apply %s %s/%s: %w", gvk.Kind, body.GetNamespace(), body.GetName(), err)
	}
	return out, nil
}

// EnsureSecrets creates the credential Secrets of c that are missing, with
// passwords from random; existing ones are left exactly as they are. It
// only ever creates (AlreadyExists means the Secret is kept), so whoever
// runs it needs `create` on Secrets and never `get`: pgsync cannot read a
// password. It returns the names it created.
func EnsureSecrets(ctx context.Context, client kubernetes.Interface, c *cluster.Cluster, random io.Reader) ([]string, error) {
	secrets := client.CoreV1().Secrets(c.Metadata.Namespace)
	all, err := NewSecrets(c, func(string) bool { return false }, random)
	if err != nil {
		return nil, err
	}
	var created []string
	for _, s := range all {
		_, err := secrets.Create(ctx, s, metav1.CreateOptions{FieldManager: pc.FieldManager})
		if apierrors.IsAlreadyExists(err) {
			continue
		}
		if err != nil {
			return created, fmt.Errorf("create Secret %s/%s: %w", s.Namespace, s.Name, err)
		}
		created = append(created, s.Name)
	}
	return created, nil
}
