package kubeenv

import (
	"context"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// SecretPassword is the password key of Secret ns/name (a cluster's
// generated NAME-superuser or NAME-app); the test fails without it.
func SecretPassword(ctx context.Context, tb testing.TB, cs kubernetes.Interface, ns, name string) string {
	tb.Helper()
	s, err := cs.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
	if err != nil {
		tb.Fatal(err)
	}
	p, ok := s.Data["password"]
	if !ok {
		tb.Fatalf("Secret %s/%s has no password", ns, name)
	}
	return string(p)
}
