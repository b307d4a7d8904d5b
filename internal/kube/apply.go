package kube

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
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
	{Group: "networking.k8s.io", Version: "v1", Kind: "NetworkPolicy"}:       "networkpolicies",
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

// ResourceOf is the API resource of a kind Render produces (the
// PodMonitor's too).
func ResourceOf(gvk schema.GroupVersionKind) (schema.GroupVersionResource, error) {
	if gvk == PodMonitorKind {
		return PodMonitorResource, nil
	}
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
	if u, ok := obj.(*unstructured.Unstructured); ok {
		obj = u.DeepCopy() // the converter would hand back u's own map
	}
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

// SecretPolicy says which credential Secrets that exist already
// EnsureSecrets keeps (pgsync cannot read a Secret, so it cannot tell who
// created one from the Secret itself).
type SecretPolicy struct {
	// Established: the cluster runs (pgsync's StatefulSet exists), so its
	// Secrets are the ones it was created with: every existing one is
	// kept.
	Established bool
	// Now dates a new CA (nil: time.Now).
	Now func() time.Time
}

// NotOursError: a new cluster's credential Secret exists and pgsync did
// not create it.
type NotOursError struct {
	Cluster cluster.Key
	Secret  string
}

func (e *NotOursError) Error() string {
	return fmt.Sprintf("refused to create cluster %s: Secret %s/%s exists and pgsync did not create it, so whoever did chose its password or CA key; "+
		"delete it to have pgsync generate one (kubectl -n %s delete secret %s), or adopt it on purpose with the annotation %s: \"true\" in the Cluster file",
		e.Cluster, e.Cluster.Namespace, e.Secret, e.Cluster.Namespace, e.Secret, pc.AnnAdoptSecrets)
}

// EnsureSecrets creates the credential Secrets of c that are missing, with
// passwords from random. It only ever creates, so whoever runs it needs
// `create` on Secrets and never `get`: pgsync cannot read a password. A
// Secret that exists already (AlreadyExists) is kept when the cluster is
// established, when pgsync recorded creating it (the NAME-params
// ConfigMap's pgsync.io/secrets-created annotation, written after each
// create: an apply interrupted after a create resumes), or when the
// Cluster file says pgsync.io/adopt-secrets: "true"; otherwise it is a
// *NotOursError. Call it once the ConfigMap exists (the record is skipped
// while it does not). It returns the names it created.
func EnsureSecrets(ctx context.Context, client kubernetes.Interface, c *cluster.Cluster, random io.Reader, pol SecretPolicy) ([]string, error) {
	secrets := client.CoreV1().Secrets(c.Metadata.Namespace)
	all, err := NewSecrets(c, func(string) bool { return false }, random)
	if err != nil {
		return nil, err
	}
	rollout, _ := c.Rollout()
	recorded, err := recordedSecrets(ctx, client, c)
	if err != nil {
		return nil, err
	}
	now := time.Now
	if pol.Now != nil {
		now = pol.Now
	}
	caSecret, caMap, err := NewCA(c, now(), random)
	if err != nil {
		return nil, err
	}
	all = append(all, caSecret)
	var created []string
	for _, s := range all {
		_, err := secrets.Create(ctx, s, metav1.CreateOptions{FieldManager: pc.FieldManager})
		if err == nil && s == caSecret {
			// Published with the CA it belongs to (pgsync cannot read
			// the Secret later); one left by an earlier CA is replaced.
			err = publishCA(ctx, client, caMap)
			if err != nil {
				return created, err
			}
		}
		switch {
		case apierrors.IsAlreadyExists(err):
			if pol.Established || slices.Contains(recorded, s.Name) {
				continue
			}
			if !rollout.AdoptSecrets {
				return created, &NotOursError{Cluster: c.Key(), Secret: s.Name}
			}
		case err != nil:
			return created, fmt.Errorf("create Secret %s/%s: %w", s.Namespace, s.Name, err)
		default:
			created = append(created, s.Name)
		}
		recorded = append(recorded, s.Name)
		if err := recordSecrets(ctx, client, c, recorded); err != nil {
			return created, err
		}
	}
	return created, nil
}

// publishCA creates the NAME-ca ConfigMap, or replaces its certificate.
func publishCA(ctx context.Context, client kubernetes.Interface, cm *corev1.ConfigMap) error {
	cms := client.CoreV1().ConfigMaps(cm.Namespace)
	_, err := cms.Create(ctx, cm, metav1.CreateOptions{FieldManager: pc.FieldManager})
	if apierrors.IsAlreadyExists(err) {
		patch, merr := json.Marshal(map[string]any{"data": cm.Data})
		if merr != nil {
			return merr
		}
		_, err = cms.Patch(ctx, cm.Name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: pc.FieldManager})
	}
	if err != nil {
		return fmt.Errorf("publish the CA in ConfigMap %s/%s: %w", cm.Namespace, cm.Name, err)
	}
	return nil
}

// recordedSecrets reads the ConfigMap's record (none while it is missing).
func recordedSecrets(ctx context.Context, client kubernetes.Interface, c *cluster.Cluster) ([]string, error) {
	cm, err := client.CoreV1().ConfigMaps(c.Metadata.Namespace).Get(ctx, NamesOf(c).Params(), metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return nil, nil
	case err != nil:
		return nil, fmt.Errorf("ConfigMap %s/%s: %w", c.Metadata.Namespace, NamesOf(c).Params(), err)
	}
	v := cm.Annotations[pc.AnnSecretsCreated]
	if v == "" {
		return nil, nil
	}
	return strings.Split(v, ","), nil
}

func recordSecrets(ctx context.Context, client kubernetes.Interface, c *cluster.Cluster, names []string) error {
	names = slices.Compact(slices.Sorted(slices.Values(names)))
	patch := fmt.Sprintf(`{"metadata":{"annotations":{%q:%q}}}`, pc.AnnSecretsCreated, strings.Join(names, ","))
	_, err := client.CoreV1().ConfigMaps(c.Metadata.Namespace).Patch(ctx, NamesOf(c).Params(), types.MergePatchType, []byte(patch),
		metav1.PatchOptions{FieldManager: pc.SecretsFieldManager})
	if err != nil && !apierrors.IsNotFound(err) {
		return fmt.Errorf("record the Secrets pgsync created on ConfigMap %s/%s: %w", c.Metadata.Namespace, NamesOf(c).Params(), err)
	}
	return nil
}
