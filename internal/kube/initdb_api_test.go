package kube

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// TestAPIInitDBOwnerSecret: with spec.bootstrap.initdb.secret, a real
// kube-apiserver gets a pod template that projects the user's Secret,
// pgsync creates no NAME-app and does not refuse, touch or copy the
// user's Secret (it is not one of pgsync's), and no stored object holds
// its password.
func TestAPIInitDBOwnerSecret(t *testing.T) {
	e := newAPIEnv(t, 1)
	e.c = loadCluster(t, func(y string) string {
		return strings.Replace(y, "namespace: shop", "namespace: "+e.ns, 1) + initdbYAML
	})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const password = "owner-password-from-the-user"
	user, err := e.cs.CoreV1().Secrets(e.ns).Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: "shop-owner", Namespace: e.ns}, Type: corev1.SecretTypeBasicAuth,
		StringData: map[string]string{"username": "alice", "password": password}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	o, err := Render(e.c, Options{InstanceImage: "localhost:5000/pgsync:dev", TargetPrimary: "web-0"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Apply(ctx, e.dyn, o.Params, ApplyOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	created, err := EnsureSecrets(ctx, e.cs, e.c, rand.Reader, SecretPolicy{})
	if err != nil {
		t.Fatalf("EnsureSecrets with the user's owner Secret: %v", err)
	}
	same(t, created, []string{"web-ca"})
	if _, err := e.cs.CoreV1().Secrets(e.ns).Get(ctx, "web-app", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("web-app: %v, want NotFound", err)
	}
	live := e.applyAll(ctx, t, o, ApplyOptions{})
	for key, u := range live {
		b, _ := json.Marshal(u.Object)
		if strings.Contains(string(b), password) {
			t.Errorf("%s holds the owner's password", key)
		}
	}
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: "web-0", Namespace: e.ns, Labels: o.StatefulSet.Spec.Template.Labels},
		Spec:       *o.StatefulSet.Spec.Template.Spec.DeepCopy(),
	}
	pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{Name: "pgdata", VolumeSource: corev1.VolumeSource{
		PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: "pgdata-web-0"}}})
	if _, err := e.cs.CoreV1().Pods(e.ns).Create(ctx, pod, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
		t.Fatalf("a pod from the template is not admitted: %v", err)
	}
	sts, err := e.cs.AppsV1().StatefulSets(e.ns).Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var refs []string
	for _, v := range sts.Spec.Template.Spec.Volumes {
		if v.Projected != nil && v.Name != volCA { // the credentials'
			for _, s := range v.Projected.Sources {
				if s.Secret != nil {
					refs = append(refs, s.Secret.Name)
				}
			}
		}
	}
	same(t, refs, []string{"web-superuser", "web-replication", "shop-owner"})
	after, err := e.cs.CoreV1().Secrets(e.ns).Get(ctx, "shop-owner", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if after.ResourceVersion != user.ResourceVersion || len(after.Labels) != 0 {
		t.Errorf("the user's Secret was changed (resourceVersion %s → %s, labels %v)", user.ResourceVersion, after.ResourceVersion, after.Labels)
	}
}
