package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pgsync/pgsync/internal/podcontract"
	"github.com/pgsync/pgsync/test/regtest"
)

// TestApplyImagePolicyRealPods: a cluster created from a tag, then applied
// with an image policy requiring the local registry's signature. The
// plan says the instance restarts once onto the verified digest; after
// it the pod runs exactly that digest (its spec names it, and the kubelet
// reports it as the image it runs), the instance image pinned too; a
// second apply with the policy has nothing to do.
func TestApplyImagePolicyRealPods(t *testing.T) {
	t.Parallel()
	regtest.Require(t)
	ctx, env, repo := websiteTest(t, 10*time.Minute)
	ns := env.Namespace
	policy := filepath.Join(t.TempDir(), "policy.yaml")
	if err := os.WriteFile(policy, []byte(fmt.Sprintf(`apiVersion: pgsync.io/v1
kind: ImagePolicy
rules:
- images: ["%[1]s/postgresql", "%[1]s/pgsync"]
  keys: [%[2]s]
- images: ["**"]
  deny: true
`, regtest.Registry, regtest.SignKey)), 0o644); err != nil {
		t.Fatal(err)
	}
	createWebsite(ctx, t, env, repo, websiteYAML(ns, image1518, 1, ""), "website at 15.18, by tag")

	pinned := image1518 + "@" + regtest.Digest(t, image1518)
	pinnedInst := pgsyncImage + "@" + regtest.Digest(t, pgsyncImage)
	out, code := pgsyncApply(ctx, t, env, repo, "--image-policy", policy)
	if code != 0 {
		t.Fatalf("apply with the policy exited %d:\n%s", code, out)
	}
	for _, want := range []string{"image policy: rolls " + pinned + " (signed by " + regtest.SignKey + ")",
		"pinned to its verified digest", "every instance restarts once", "Instance image (the pgsync binary in every pod): " + pinnedInst} {
		if !strings.Contains(out, want) {
			t.Errorf("apply's plan lacks %q:\n%s", want, out)
		}
	}
	pod, err := env.Client.CoreV1().Pods(ns).Get(ctx, "website-0", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	digest := strings.TrimPrefix(pinned, image1518+"@")
	for _, c := range pod.Spec.Containers {
		if c.Name == podcontract.ContainerPostgres && c.Image != pinned {
			t.Errorf("website-0 runs %s, want %s", c.Image, pinned)
		}
	}
	for _, c := range pod.Spec.InitContainers {
		if c.Name == podcontract.ContainerBootstrap && c.Image != pinnedInst {
			t.Errorf("website-0's instance image is %s, want %s", c.Image, pinnedInst)
		}
	}
	for _, s := range pod.Status.ContainerStatuses {
		if s.Name == podcontract.ContainerPostgres && !strings.HasSuffix(s.ImageID, digest) {
			t.Errorf("the kubelet reports website-0 running %s, want the digest %s", s.ImageID, digest)
		}
	}
	if out, code := pgsyncApply(ctx, t, env, repo, "--image-policy", policy); code != 0 || !strings.Contains(out, "No changes") {
		t.Errorf("a second apply with the policy: %d\n%s", code, out)
	}
}
