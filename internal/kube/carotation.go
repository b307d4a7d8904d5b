package kube

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	"github.com/pgsync/pgsync/internal/cluster"
	pc "github.com/pgsync/pgsync/internal/podcontract"
	"github.com/pgsync/pgsync/internal/tlscert"
)

// RotateCA creates generation gen of c's CA (docs/security.md, "The CA's
// rotation"): valid from tlscert.SwitchAfter on (sooner when the newest
// CA expires before that), its certificate added to the NAME-ca
// ConfigMap's bundle of every unexpired generation, then the Secret
// NAME-ca-gen created. Like EnsureSecrets it only creates Secrets: the
// name is recorded first (pgsync.io/secrets-created), so a run killed
// after the create finds the Secret its own; one that exists unrecorded
// was planted and is refused. The bundle is written before the Secret, so
// no instance ever issues from a CA that clients were not given.
func RotateCA(ctx context.Context, client kubernetes.Interface, c *cluster.Cluster, gen int, now time.Time, random io.Reader) error {
	n := NamesOf(c)
	name := pc.Names{Cluster: c.Metadata.Name}.CASecretOf(gen)
	if gen < 2 || gen > pc.CAGenerations {
		return fmt.Errorf("rotate the CA of %s: generation %d: pgsync rotates through generations 2 to %d", c.Key(), gen, pc.CAGenerations)
	}
	cms := client.CoreV1().ConfigMaps(c.Metadata.Namespace)
	cm, err := cms.Get(ctx, n.CAConfigMap(), metav1.GetOptions{})
	if err != nil {
		return fmt.Errorf("rotate the CA of %s: ConfigMap %s: %w", c.Key(), n.CAConfigMap(), err)
	}
	published, err := tlscert.ParseBundle([]byte(cm.Data[pc.CACertKey]))
	if err != nil {
		return fmt.Errorf("rotate the CA of %s: ConfigMap %s's %s: %w", c.Key(), n.CAConfigMap(), pc.CACertKey, err)
	}
	from := now.Add(tlscert.SwitchAfter)
	for _, p := range published {
		// Issue from the successor while the old CA is still valid.
		if half := now.Add(p.NotAfter.Sub(now) / 2); p.NotAfter.After(now) && half.Before(from) {
			from = half
		}
	}
	recorded, err := recordedSecrets(ctx, client, c)
	if err != nil {
		return err
	}
	ours := slices.Contains(recorded, name)
	if !ours {
		if err := recordSecrets(ctx, client, c, append(recorded, name)); err != nil {
			return err
		}
	}
	ca, err := tlscert.NewCAFrom(fmt.Sprintf("pgsync %s/%s #%d", c.Metadata.Namespace, c.Metadata.Name, gen), from, random)
	if err != nil {
		return fmt.Errorf("rotate the CA of %s: %w", c.Key(), err)
	}
	cert, err := tlscert.ParseCert(ca.CertPEM)
	if err != nil {
		return err
	}
	patch, err := json.Marshal(map[string]any{
		"metadata": map[string]any{"annotations": map[string]string{pc.AnnCAGeneration: strconv.Itoa(gen)}},
		"data":     map[string]string{pc.CACertKey: string(tlscert.Bundle(append(published, cert), now))},
	})
	if err != nil {
		return err
	}
	if _, err := cms.Patch(ctx, cm.Name, types.MergePatchType, patch, metav1.PatchOptions{FieldManager: pc.FieldManager}); err != nil {
		return fmt.Errorf("publish the CA of %s in ConfigMap %s: %w", c.Key(), cm.Name, err)
	}
	sec := &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: meta(c, name),
		Type:       corev1.SecretTypeOpaque,
		Data:       map[string][]byte{pc.CACertKey: ca.CertPEM, pc.CAKeyKey: ca.KeyPEM},
	}
	_, err = client.CoreV1().Secrets(c.Metadata.Namespace).Create(ctx, sec, metav1.CreateOptions{FieldManager: pc.FieldManager})
	switch {
	case apierrors.IsAlreadyExists(err) && ours:
		return nil // created by an earlier run, which published it
	case apierrors.IsAlreadyExists(err):
		// Not ours after all: the record must not make it ours next time.
		if err := recordSecrets(ctx, client, c, recorded); err != nil {
			return err
		}
		return fmt.Errorf("rotate the CA of %s: Secret %s/%s exists and pgsync did not create it, so whoever did chose the CA key every instance would issue from; delete it (kubectl -n %s delete secret %s) and apply again",
			c.Key(), c.Metadata.Namespace, name, c.Metadata.Namespace, name)
	case err != nil:
		return fmt.Errorf("rotate the CA of %s: create Secret %s/%s: %w", c.Key(), c.Metadata.Namespace, name, err)
	}
	return nil
}
