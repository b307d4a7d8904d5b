package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	"github.com/pgsync/pgsync/internal/cluster"
	pc "github.com/pgsync/pgsync/internal/podcontract"
	"github.com/pgsync/pgsync/internal/revision"
	"github.com/pgsync/pgsync/test/kubeenv"
	"github.com/pgsync/pgsync/test/podsim"
	"github.com/pgsync/pgsync/test/regtest"
)

// TestAPIImagePolicy: --image-policy against the local Kubernetes' real
// registry (its images signed at start) and a real kube-apiserver, with
// the pods simulated (test/podsim). A signed image rolls, pinned by
// digest in the StatefulSet (the instance image too); an unsigned one is
// refused at spec.imageName and nothing changes; a saved plan is refused
// once its tag has moved, to an unsigned image or to another signed one;
// requireDigest refuses a tag-only image unless the rule resolves tags.
func TestAPIImagePolicy(t *testing.T) {
	regtest.Require(t)
	admin := kubeenv.APIServer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	cs, err := kubernetes.NewForConfig(admin)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	kc := filepath.Join(dir, "admin.kubeconfig")
	writeKubeconfig(t, kc, admin, &clientcmdapi.AuthInfo{ClientCertificateData: admin.CertData, ClientKeyData: admin.KeyData})
	ns := kubeenv.Namespace(t, admin)
	// The API server is shared by the package's tests, and live plans of
	// every namespace would see this cluster: it goes with the test.
	t.Cleanup(func() {
		_ = cs.AppsV1().StatefulSets(ns).Delete(context.Background(), "web", metav1.DeleteOptions{})
	})

	// This test's own repository in the registry (the shared images'
	// tags are never moved), signed with a key of its own.
	testRepo := regtest.Repo(t)
	key := regtest.NewKey(t, dir, "test")
	testPub := key.Pub
	sign := func(d name.Digest) { t.Helper(); key.Sign(t, d) }
	policy := filepath.Join(dir, "policy.yaml")
	writePolicy := func(body string) {
		t.Helper()
		if err := os.WriteFile(policy, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	writePolicy(fmt.Sprintf(`apiVersion: pgsync.io/v1
kind: ImagePolicy
rules:
- images: ["%[1]s/postgresql", "%[1]s/pgsync"]
  keys: [%[2]s]
- images: ["%[3]s/signed"]
  keys: [%[4]s]
- images: ["%[3]s/pinned"]
  requireDigest: true
- images: ["%[3]s/resolved"]
  requireDigest: true
  resolveTags: true
- images: ["**"]
  deny: true
`, regtest.Registry, regtest.SignKey, testRepo, testPub))
	const instanceImage = regtest.Registry + "/pgsync:dev"
	pgDigest, instDigest := regtest.Digest(t, regtest.Registry+"/postgresql:15.18"), regtest.Digest(t, instanceImage)
	pinnedPG := regtest.Registry + "/postgresql:15.18@" + pgDigest
	pinnedInst := instanceImage + "@" + instDigest

	web := func(image string) string {
		return fmt.Sprintf("apiVersion: postgresql.cnpg.io/v1\nkind: Cluster\nmetadata: {name: web, namespace: %s}\nspec:\n  instances: 1\n  imageName: %s\n  storage: {size: 1Gi}\n", ns, image)
	}
	repo := newGitRepo(t)
	repo.commit("web", map[string]string{"clusters/web.yaml": web(regtest.Registry + "/postgresql:15.18")})
	withPolicy := []string{"--repo", repo.dir, "--image-policy", policy, "--instance-image", instanceImage}

	// The offline plan shows the digests it will roll and who signed them.
	res := pgsync(t, append([]string{"plan", "--offline", "--format", "json"}, withPolicy...)...)
	if res.code != 0 {
		t.Fatalf("plan: %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	var doc struct {
		InstanceImage struct {
			Pinned   string   `json:"pinned"`
			SignedBy []string `json:"signed_by"`
		} `json:"instance_image"`
		Clusters []struct {
			ImagePolicy struct {
				Image, Pinned, Digest string
				SignedBy              []string `json:"signed_by"`
			} `json:"image_policy"`
			Steps []struct{ Action, To string }
		}
	}
	if err := json.Unmarshal([]byte(res.stdout), &doc); err != nil {
		t.Fatal(err)
	}
	ip := doc.Clusters[0].ImagePolicy
	if ip.Pinned != pinnedPG || ip.Digest != pgDigest || len(ip.SignedBy) != 1 || ip.SignedBy[0] != regtest.SignKey ||
		doc.InstanceImage.Pinned != pinnedInst || doc.Clusters[0].Steps[1].To != pinnedPG {
		t.Fatalf("plan JSON:\n%s", res.stdout)
	}
	res = pgsync(t, append([]string{"plan", "--offline"}, withPolicy...)...)
	if res.code != 0 || !strings.Contains(res.stdout, "image policy: rolls "+pinnedPG+" (signed by "+regtest.SignKey+")") ||
		!strings.Contains(res.stdout, "Instance image (the pgsync binary in every pod): "+pinnedInst) {
		t.Fatalf("plan text: %d\n%s%s", res.code, res.stdout, res.stderr)
	}

	// Apply rolls exactly what was verified: both images pinned in the
	// StatefulSet. The pod is simulated when the StatefulSet asks for it.
	podIP := "127.77.13.1"
	srv, err := podsim.Serve([]string{podIP}, pc.HTTPPort)
	if errors.Is(err, syscall.EADDRINUSE) {
		t.Fatalf("%v: this test serves the instance's /status on port %d of %s, as apply reads it; something else holds the port", err, pc.HTTPPort, podIP)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Close)
	simDone := make(chan struct{})
	simCtx, stopSim := context.WithCancel(ctx)
	go func() {
		defer close(simDone)
		for simCtx.Err() == nil {
			time.Sleep(100 * time.Millisecond)
			sts, err := cs.AppsV1().StatefulSets(ns).Get(simCtx, "web", metav1.GetOptions{})
			if err != nil || sts.Spec.Replicas == nil || *sts.Spec.Replicas < 1 {
				continue
			}
			if _, err := cs.CoreV1().Pods(ns).Get(simCtx, "web-0", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
				continue
			}
			set, err := cluster.Load([]cluster.File{{Path: "web.yaml", Data: []byte(web(pinnedPG))}})
			if err != nil {
				t.Error(err)
				return
			}
			if err := podsim.CreateClaim(simCtx, cs, sts, 0, "", ""); err != nil && !apierrors.IsAlreadyExists(err) {
				t.Error(err)
				return
			}
			srv.Set(podIP, podsim.ConvergedStatus(set.Clusters[0], 0, revision.Config(set.Clusters[0])))
			if _, err := podsim.CreatePod(simCtx, cs, sts, 0, podsim.Pod{IP: podIP, Ready: true}); err != nil {
				t.Error(err)
				return
			}
			if err := podsim.HoldLease(simCtx, cs, ns, "web-primary", "web-0"); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	res = pgsync(t, append([]string{"apply", "--kubeconfig", kc, "--auto-approve", "--step-timeout", "30s"}, withPolicy...)...)
	stopSim()
	<-simDone
	if res.code != 0 {
		t.Fatalf("apply: %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	sts, err := cs.AppsV1().StatefulSets(ns).Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := containerImage(sts, pc.ContainerPostgres); got != pinnedPG {
		t.Errorf("the StatefulSet's postgres image is %s, want %s", got, pinnedPG)
	}
	if got := initImage(sts, pc.ContainerBootstrap); got != pinnedInst {
		t.Errorf("the StatefulSet's instance image is %s, want %s", got, pinnedInst)
	}
	// Converged: the same policy plans nothing more.
	if res := pgsync(t, append([]string{"plan", "--kubeconfig", kc, "--detailed-exitcode", "--status-via", "direct"}, withPolicy...)...); res.code != 0 {
		t.Fatalf("plan after apply: %d\n%s%s", res.code, res.stdout, res.stderr)
	}

	// An unsigned image is refused at spec.imageName, by plan and apply,
	// and nothing changes.
	unsigned := testRepo + "/signed:15.20"
	regtest.Push(t, unsigned)
	repo.commit("unsigned", map[string]string{"clusters/web.yaml": web(unsigned)})
	wantRefusal := "clusters/web.yaml:6:14: spec.imageName: refused by the image policy: " + policy + " rule 2 (line 6) requires a signature by " + testPub
	for _, args := range [][]string{{"plan", "--kubeconfig", kc}, {"apply", "--kubeconfig", kc, "--auto-approve"}} {
		res := pgsync(t, append(args, withPolicy...)...)
		if res.code != 1 || !strings.Contains(res.stderr, wantRefusal) || strings.Contains(res.stdout, "Steps:") {
			t.Errorf("%s of an unsigned image: %d\n%s%s\nwant %s", args[0], res.code, res.stdout, res.stderr, wantRefusal)
		}
	}
	after, err := cs.AppsV1().StatefulSets(ns).Get(ctx, "web", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if after.ResourceVersion != sts.ResourceVersion {
		t.Errorf("a refused image changed the StatefulSet (resourceVersion %s → %s)", sts.ResourceVersion, after.ResourceVersion)
	}

	// Signed, then planned and saved; the tag then moves — to an unsigned
	// image, then to another signed one: apply refuses the saved plan.
	sign(regtest.Push(t, unsigned))
	repo.commit("signed", map[string]string{"clusters/web.yaml": web(unsigned)})
	saved := filepath.Join(dir, "plan.json")
	if res := pgsync(t, append([]string{"plan", "--kubeconfig", kc, "--format", "json", "--out", saved}, withPolicy...)...); res.code != 0 {
		t.Fatalf("plan --out: %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	regtest.Push(t, unsigned)
	res = pgsync(t, append([]string{"apply", "--kubeconfig", kc, saved}, withPolicy...)...)
	if res.code != 1 || !strings.Contains(res.stderr, "clusters/web.yaml:6:14: spec.imageName: refused by the image policy") {
		t.Errorf("apply of a saved plan whose tag moved to an unsigned image: %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	moved := regtest.Push(t, unsigned)
	sign(moved)
	res = pgsync(t, append([]string{"apply", "--kubeconfig", kc, saved}, withPolicy...)...)
	if res.code != 1 || !strings.Contains(res.stderr, "is stale: "+ns+"/web's image: "+unsigned+" moved since the plan") ||
		!strings.Contains(res.stderr, "→ "+moved.DigestStr()) {
		t.Errorf("apply of a saved plan whose tag moved to another signed image: %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	if after, err := cs.AppsV1().StatefulSets(ns).Get(ctx, "web", metav1.GetOptions{}); err != nil || after.ResourceVersion != sts.ResourceVersion {
		t.Errorf("a refused saved plan changed the StatefulSet: %v", err)
	}

	// requireDigest: a tag-only image is refused without resolution,
	// pinned with it; an image pinned in Git passes as written.
	pinnedD := regtest.Push(t, testRepo+"/pinned:15.20")
	resolvedD := regtest.Push(t, testRepo+"/resolved:15.20")
	for _, tc := range []struct{ image, want string }{
		{testRepo + "/pinned:15.20", "requires a digest: pin " + testRepo + "/pinned:15.20 by digest"},
		{testRepo + "/pinned:15.20@" + pinnedD.DigestStr(), "image policy: rolls " + testRepo + "/pinned:15.20@" + pinnedD.DigestStr() + " (digest pinned"},
		{testRepo + "/resolved:15.20", "image policy: rolls " + testRepo + "/resolved:15.20@" + resolvedD.DigestStr() + " (digest pinned"},
	} {
		repo.commit(tc.image, map[string]string{"clusters/web.yaml": web(tc.image)})
		res := pgsync(t, append([]string{"plan", "--offline"}, withPolicy...)...)
		if !strings.Contains(res.stdout+res.stderr, tc.want) {
			t.Errorf("%s: %d\n%s%s\nwant %s", tc.image, res.code, res.stdout, res.stderr, tc.want)
		}
	}

	// A review against the base commit pins the base as well: an unchanged
	// cluster plans nothing.
	repo.commit("unrelated", map[string]string{"README": "x"})
	if res := pgsync(t, append([]string{"plan", "--base", "HEAD~1", "--detailed-exitcode"}, withPolicy...)...); res.code != 0 {
		t.Errorf("plan --base of an unchanged cluster under the policy: %d\n%s%s", res.code, res.stdout, res.stderr)
	}

	res = pgsync(t, "apply", "--kubeconfig", kc, "--repo", repo.dir, "--image-policy", policy, "--instance-image", "")
	if res.code != 1 || !strings.Contains(res.stderr, "--image-policy needs --instance-image") {
		t.Errorf("apply with a policy and no instance image: %d\n%s", res.code, res.stderr)
	}
	// The policy file is parsed first: an invalid one stops the command.
	writePolicy("apiVersion: pgsync.io/v1\nkind: ImagePolicy\nrules:\n- images: [\"**\"]\n  verify: true\n")
	res = pgsync(t, append([]string{"plan", "--offline"}, withPolicy...)...)
	if res.code != 1 || !strings.Contains(res.stderr, policy+":5:3: rules[0].verify: unknown field") {
		t.Errorf("an invalid policy: %d\n%s", res.code, res.stderr)
	}
}

func containerImage(sts *appsv1.StatefulSet, name string) string {
	for _, c := range sts.Spec.Template.Spec.Containers {
		if c.Name == name {
			return c.Image
		}
	}
	return ""
}

func initImage(sts *appsv1.StatefulSet, name string) string {
	for _, c := range sts.Spec.Template.Spec.InitContainers {
		if c.Name == name {
			return c.Image
		}
	}
	return ""
}
