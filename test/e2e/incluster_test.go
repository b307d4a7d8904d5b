package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pgsync/pgsync/hack/kube/kubelayout"
	"github.com/pgsync/pgsync/test/kubeenv"
)

// nodeIP is the local Kubernetes's node address: pods reach the host on it
// (hack/kube/kubelocal; examples/demo uses it too).
const nodeIP = "198.18.0.1"

var (
	gitserveOnce sync.Once
	gitservePath string
	gitserveErr  error
)

// serveGit serves repo over HTTP on the node IP with hack/demo/gitserve
// (git http-backend), as make demo does; it returns the clone URL.
func serveGit(ctx context.Context, t *testing.T, repo *gitRepo) string {
	t.Helper()
	root := kubeRoot(t)
	gitserveOnce.Do(func() {
		dir, err := os.MkdirTemp("", "pgsync-gitserve-")
		if err != nil {
			gitserveErr = err
			return
		}
		gitservePath = filepath.Join(dir, "gitserve")
		cmd := osexec.Command("go", "build", "-o", gitservePath, "./hack/demo/gitserve")
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			gitserveErr = fmt.Errorf("go build gitserve: %v\n%s", err, out)
		}
	})
	if gitserveErr != nil {
		t.Fatal(gitserveErr)
	}
	served := t.TempDir()
	if err := os.Symlink(filepath.Join(repo.dir, ".git"), filepath.Join(served, "fleet.git")); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", nodeIP+":0")
	if err != nil {
		t.Fatalf("listen on the node IP: %v", err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cmd := osexec.CommandContext(ctx, gitservePath, "-listen", addr, "-root", served)
	log := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	url := "http://" + addr + "/fleet.git"
	for i := 0; ; i++ {
		if out, err := osexec.Command("git", "ls-remote", url).CombinedOutput(); err == nil {
			break
		} else if i == 50 {
			t.Fatalf("git server at %s: %v\n%s\n%s", url, err, out, log.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	return url
}

func kubeRoot(t *testing.T) string {
	t.Helper()
	root, err := kubelayout.Root()
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// clusterDaemon is deploy/run, with the Secrets of examples/daemon-secrets
// mounted, applied with kustomize into the test's namespace — its objects
// prefixed with the namespace, the cluster-scoped ones too — so it runs
// in pods with the ServiceAccount token of exactly deploy/apply's
// ClusterRole and its leader Role, under PodSecurity restricted.
type clusterDaemon struct {
	env    *kubeenv.Env
	prefix string
}

func deployDaemon(ctx context.Context, t *testing.T, env *kubeenv.Env, repoURL, interval, webhookSecret string) *clusterDaemon {
	t.Helper()
	ns := env.Namespace
	dir := t.TempDir()
	base, err := filepath.Rel(dir, filepath.Join(kubeRoot(t), "examples", "daemon-secrets"))
	if err != nil {
		t.Fatal(err)
	}
	// The example's Secrets: the webhook's for real; the repository is
	// served over HTTP and its commits are unsigned, so the SSH key and
	// the key ring are placeholders that are mounted but not used.
	for name, data := range map[string]map[string][]byte{
		"pgsync-webhook":      {"secret": []byte(webhookSecret + "\n")},
		"pgsync-git-ssh":      {"id_ed25519": []byte("unused"), "known_hosts": []byte("")},
		"pgsync-trusted-keys": {"keys.asc": []byte("unused")},
	} {
		sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: name}, Data: data}
		if _, err := env.Client.CoreV1().Secrets(ns).Create(ctx, sec, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	args := []string{"run", "--repo=" + repoURL, "--ref=main", "--path=clusters", "--interval=" + interval,
		"--leader-elect", "--http-addr=:8080", "--namespace=" + ns, "--instance-image=" + pgsyncImage,
		"--instance-image-pull-policy=Always", "--step-timeout=3m", "--webhook-secret-file=/etc/pgsync/webhook/secret"}
	quoted, _ := json.Marshal(args)
	kustomization := fmt.Sprintf(`apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: %s
namePrefix: %s-
resources:
  - %s
patches:
  - target: {kind: Deployment, name: pgsync}
    patch: |-
      - op: replace
        path: /spec/template/spec/containers/0/args
        value: %s
      - op: add
        path: /spec/template/spec/containers/0/imagePullPolicy
        value: Always
`, ns, ns, base, quoted)
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(kustomization), 0o644); err != nil {
		t.Fatal(err)
	}
	d := &clusterDaemon{env: env, prefix: ns + "-"}
	d.kubectl(ctx, t, "apply", "-k", dir)
	t.Cleanup(func() {
		// Cluster-scoped: the namespace's deletion does not take them.
		cctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		d.kubectl(cctx, t, "delete", "--ignore-not-found", "clusterrolebinding/"+d.prefix+"pgsync-apply", "clusterrole/"+d.prefix+"pgsync-apply")
	})
	d.kubectl(ctx, t, "-n", ns, "rollout", "status", "deployment/"+d.prefix+"pgsync", "--timeout=3m")
	return d
}

func (d *clusterDaemon) kubectl(ctx context.Context, t *testing.T, args ...string) string {
	t.Helper()
	cmd := osexec.CommandContext(ctx, "kubectl", args...)
	cmd.Env = append(os.Environ(), "KUBECONFIG="+d.env.Kubeconfig)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// leaderAddr is the HTTP address of the replica that leads (pod IPs are
// reachable from the node).
func (d *clusterDaemon) leaderAddr(ctx context.Context) (string, error) {
	pods, err := d.env.Client.CoreV1().Pods(d.env.Namespace).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=pgsync"})
	if err != nil {
		return "", err
	}
	for _, p := range pods.Items {
		if p.Status.PodIP == "" || p.DeletionTimestamp != nil {
			continue
		}
		addr := net.JoinHostPort(p.Status.PodIP, "8080")
		var st struct {
			Leader bool `json:"leader"`
		}
		resp, err := http.Get("http://" + addr + "/status")
		if err != nil {
			continue
		}
		err = json.NewDecoder(resp.Body).Decode(&st)
		resp.Body.Close()
		if err == nil && st.Leader {
			return addr, nil
		}
	}
	return "", fmt.Errorf("no replica of %d leads yet", len(pods.Items))
}

func (d *clusterDaemon) status(t *testing.T) (daemonStatus, error) {
	t.Helper()
	addr, err := d.leaderAddr(context.Background())
	if err != nil {
		return daemonStatus{}, err
	}
	return (&daemonProc{addr: addr}).status(t)
}

// logs is the last lines of each replica's log.
func (d *clusterDaemon) logs(t *testing.T) string { return d.logsSince(t, "60") }

// logsSince is the last tail lines of each replica's log ("-1": all).
func (d *clusterDaemon) logsSince(t *testing.T, tail string) string {
	cmd := osexec.Command("kubectl", "-n", d.env.Namespace, "logs", "-l", "app.kubernetes.io/name=pgsync", "--tail="+tail, "--prefix")
	cmd.Env = append(os.Environ(), "KUBECONFIG="+d.env.Kubeconfig)
	out, _ := cmd.CombinedOutput()
	return string(out)
}

// stop removes the Deployment and waits until its pods are gone.
func (d *clusterDaemon) stop(ctx context.Context, t *testing.T) {
	t.Helper()
	d.kubectl(ctx, t, "-n", d.env.Namespace, "delete", "deployment/"+d.prefix+"pgsync", "--wait=true")
	waitUntil(ctx, t, "the in-cluster daemon's pods are gone", 500*time.Millisecond, func() bool {
		pods, err := d.env.Client.CoreV1().Pods(d.env.Namespace).List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=pgsync"})
		return err == nil && len(pods.Items) == 0
	})
}
