package kube

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/yaml"
)

// TestAPIInstancePodPolicy: deploy/instance-policy, installed in a real
// kube-apiserver, lets a cluster's instances set pgsync.io/role on their
// pods and nothing else — no relabelling into another cluster's Services,
// no other label, annotation or role value — while pgsync and other users
// are not affected.
func TestAPIInstancePodPolicy(t *testing.T) {
	e := newAPIEnv(t, 2)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	vap := schema.GroupVersionResource{Group: "admissionregistration.k8s.io", Version: "v1", Resource: "validatingadmissionpolicies"}
	vapb := schema.GroupVersionResource{Group: "admissionregistration.k8s.io", Version: "v1", Resource: "validatingadmissionpolicybindings"}
	policy := readManifest(t, "../../deploy/instance-policy/policy.yaml")
	binding := readManifest(t, "../../deploy/instance-policy/binding.yaml")
	// The shipped binding is cluster-wide; the test's is the same limited to
	// its namespace, so that tests sharing the API server are not affected.
	if _, err := e.dyn.Resource(vapb).Create(ctx, binding, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
		t.Fatalf("the shipped binding: %v", err)
	}
	policy.SetName("pgsync-instance-pod-labels-" + e.ns)
	binding.SetName(policy.GetName())
	if err := unstructured.SetNestedField(binding.Object, policy.GetName(), "spec", "policyName"); err != nil {
		t.Fatal(err)
	}
	if err := unstructured.SetNestedMap(binding.Object, map[string]any{"namespaceSelector": map[string]any{
		"matchLabels": map[string]any{"kubernetes.io/metadata.name": e.ns}}}, "spec", "matchResources"); err != nil {
		t.Fatal(err)
	}
	for _, o := range []struct {
		gvr schema.GroupVersionResource
		u   *unstructured.Unstructured
	}{{vap, policy}, {vapb, binding}} {
		if _, err := e.dyn.Resource(o.gvr).Create(ctx, o.u, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		name := o.u.GetName()
		gvr := o.gvr
		t.Cleanup(func() { _ = e.dyn.Resource(gvr).Delete(context.Background(), name, metav1.DeleteOptions{}) })
	}

	o, err := Render(e.c, Options{InstanceImage: "localhost:5000/pgsync:dev", TargetPrimary: "web-0"})
	if err != nil {
		t.Fatal(err)
	}
	e.applyAll(ctx, t, o, ApplyOptions{Force: true})
	for _, name := range []string{"web-0", "web-1"} {
		pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: e.ns, Labels: o.StatefulSet.Spec.Template.Labels,
			Annotations: o.StatefulSet.Spec.Template.Annotations}, Spec: *o.StatefulSet.Spec.Template.Spec.DeepCopy()}
		pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{Name: "pgdata", VolumeSource: corev1.VolumeSource{
			PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "pgdata-" + name}}})
		if _, err := e.cs.CoreV1().Pods(e.ns).Create(ctx, pod, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	as := rest.CopyConfig(e.cfg)
	as.Impersonate = rest.ImpersonationConfig{UserName: "system:serviceaccount:" + e.ns + ":web",
		Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + e.ns, "system:authenticated"}}
	inst, err := kubernetes.NewForConfig(as)
	if err != nil {
		t.Fatal(err)
	}
	patch := func(cs kubernetes.Interface, pod, body string) error {
		_, err := cs.CoreV1().Pods(e.ns).Patch(ctx, pod, types.MergePatchType, []byte(body), metav1.PatchOptions{FieldManager: "test"})
		return err
	}
	// Denied once the policy is in force (its informer picks it up within
	// about a second); until then the first denial is awaited.
	relabel := `{"metadata":{"labels":{"pgsync.io/cluster":"other"}}}`
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := patch(inst, "web-0", relabel)
		if err != nil && strings.Contains(err.Error(), "may change no pod label but pgsync.io/role") {
			break
		}
		if err == nil {
			_ = patch(e.cs, "web-0", `{"metadata":{"labels":{"pgsync.io/cluster":"web"}}}`)
		}
		if time.Now().After(deadline) {
			t.Fatalf("relabel into another cluster: %v; want the policy's denial", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, tc := range []struct {
		pod, body, denied string // denied: "" = allowed
	}{
		{"web-0", `{"metadata":{"labels":{"pgsync.io/role":"primary"}}}`, ""},
		{"web-1", `{"metadata":{"labels":{"pgsync.io/role":"replica"}}}`, ""}, // the other instance, as a switchover does
		{"web-0", `{"metadata":{"labels":{"pgsync.io/role":"replica"}}}`, ""},
		{"web-0", `{"metadata":{"labels":{"pgsync.io/role":null}}}`, ""},
		{"web-0", relabel, "may change no pod label but pgsync.io/role"},
		{"web-0", `{"metadata":{"labels":{"pgsync.io/cluster":null}}}`, "may change no pod label"},
		{"web-0", `{"metadata":{"labels":{"app":"x"}}}`, "may change no pod label"},
		{"web-0", `{"metadata":{"labels":{"pgsync.io/role":"admin"}}}`, "pgsync.io/role is primary or replica"},
		{"web-0", `{"metadata":{"annotations":{"pgsync.io/revision":"x"}}}`, "may change no pod annotation"},
		{"web-0", `{"spec":{"activeDeadlineSeconds":1}}`, "may not change a pod's spec"},
	} {
		err := patch(inst, tc.pod, tc.body)
		switch {
		case tc.denied == "" && err != nil:
			t.Errorf("instance patch %s %s: %v, want allowed", tc.pod, tc.body, err)
		case tc.denied != "" && (err == nil || !strings.Contains(err.Error(), tc.denied)):
			t.Errorf("instance patch %s %s: %v, want denied (%s)", tc.pod, tc.body, err, tc.denied)
		}
	}
	// pgsync (and anyone not the cluster's instances) is not limited.
	if err := patch(e.cs, "web-0", `{"metadata":{"annotations":{"pgsync.io/config-requested":"1"},"labels":{"app":"x"}}}`); err != nil {
		t.Errorf("admin patch: %v", err)
	}
}

func readManifest(t *testing.T, path string) *unstructured.Unstructured {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	u := &unstructured.Unstructured{}
	if err := yaml.Unmarshal(data, &u.Object); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return u
}
