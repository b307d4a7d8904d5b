package kube

import (
	"context"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	pc "github.com/pgsync/pgsync/internal/podcontract"
	"github.com/pgsync/pgsync/internal/tlscert"
)

// RotateCA against a real kube-apiserver: generation 2's Secret is
// created, valid a month later, and the ConfigMap bundles both
// generations; a repeated rotation (a killed run) resumes; a generation
// someone else created is refused and stays unrecorded.
func TestAPIRotateCA(t *testing.T) {
	e := newAPIEnv(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	o, err := Render(e.c, Options{InstanceImage: "localhost:5000/pgsync:dev", TargetPrimary: "web-0"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Apply(ctx, e.dyn, o.Params, ApplyOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := EnsureSecrets(ctx, e.cs, e.c, rand.Reader, SecretPolicy{}); err != nil {
		t.Fatal(err)
	}
	bundle := func() []string {
		t.Helper()
		cm, err := e.cs.CoreV1().ConfigMaps(e.ns).Get(ctx, "web-ca", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		certs, err := tlscert.ParseBundle([]byte(cm.Data[pc.CACertKey]))
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, c := range certs {
			out = append(out, c.Subject.CommonName)
		}
		return append(out, "generation "+cm.Annotations[pc.AnnCAGeneration])
	}
	same(t, bundle(), []string{"pgsync " + e.ns + "/web", "generation "})

	now := time.Now()
	if err := RotateCA(ctx, e.cs, e.c, 2, now, rand.Reader); err != nil {
		t.Fatal(err)
	}
	same(t, bundle(), []string{"pgsync " + e.ns + "/web", "pgsync " + e.ns + "/web #2", "generation 2"})
	sec, err := e.cs.CoreV1().Secrets(e.ns).Get(ctx, "web-ca-2", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	next, _, err := tlscert.Parse(tlscert.Pair{CertPEM: sec.Data[pc.CACertKey], KeyPEM: sec.Data[pc.CAKeyKey]})
	if err != nil {
		t.Fatal(err)
	}
	if d := next.NotBefore.Sub(now); d < tlscert.SwitchAfter-time.Minute || d > tlscert.SwitchAfter+time.Minute {
		t.Errorf("generation 2 valid from %s, %s after the rotation; want %s", next.NotBefore, d, tlscert.SwitchAfter)
	}
	if sec.Labels[pc.LabelCluster] != "web" {
		t.Errorf("web-ca-2 labels %v: not the cluster's", sec.Labels)
	}
	recorded, err := recordedSecrets(ctx, e.cs, e.c)
	if err != nil || !strings.Contains(strings.Join(recorded, ","), "web-ca-2") {
		t.Errorf("recorded %v, %v: want web-ca-2", recorded, err)
	}

	// A run killed after the create rotates again: its Secret stands.
	if err := RotateCA(ctx, e.cs, e.c, 2, now, rand.Reader); err != nil {
		t.Errorf("a second rotation to generation 2: %v", err)
	}
	if again, _ := e.cs.CoreV1().Secrets(e.ns).Get(ctx, "web-ca-2", metav1.GetOptions{}); string(again.Data[pc.CAKeyKey]) != string(sec.Data[pc.CAKeyKey]) {
		t.Error("generation 2's key changed")
	}

	planted := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: "web-ca-3", Namespace: e.ns},
		Data: map[string][]byte{pc.CACertKey: []byte("theirs"), pc.CAKeyKey: []byte("theirs")}}
	if _, err := e.cs.CoreV1().Secrets(e.ns).Create(ctx, planted, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := RotateCA(ctx, e.cs, e.c, 3, now, rand.Reader); err == nil || !strings.Contains(err.Error(), "web-ca-3 exists and pgsync did not create it") {
			t.Errorf("rotation onto a planted web-ca-3: %v", err)
		}
	}
	if recorded, _ := recordedSecrets(ctx, e.cs, e.c); strings.Contains(strings.Join(recorded, ","), "web-ca-3") {
		t.Errorf("the planted web-ca-3 is recorded as pgsync's: %v", recorded)
	}
	if err := RotateCA(ctx, e.cs, e.c, pc.CAGenerations+1, now, rand.Reader); err == nil {
		t.Error("a rotation past the last generation the pods mount")
	}
}
