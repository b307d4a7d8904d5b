package kube

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/pgsync/pgsync/internal/cluster"
	pc "github.com/pgsync/pgsync/internal/podcontract"
	"github.com/pgsync/pgsync/internal/tlscert"
)

// passwordAlphabet avoids characters that need quoting in a connection
// string, a URI or a shell.
const passwordAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"

// PasswordLength gives log2(62^32) ≈ 190 bits.
const PasswordLength = 32

// SecretNames are the credential Secrets pgsync generates for the
// cluster: NAME-superuser only while the superuser has access
// (spec.enableSuperuserAccess) and spec.superuserSecret names no Secret of
// the user's; NAME-app only when spec.bootstrap.initdb.secret names none.
// pgsync never creates, reads nor copies a Secret of the user's, and never
// deletes one of its own: a NAME-superuser generated while access was on
// stays when it is turned off (its password is no longer the role's).
//
// No NAME-replication: standbys log in by certificate (TLS). A cluster
// created before TLS keeps the one it has (the pod projects it when it
// exists), for standbys following a primary from before TLS.
func SecretNames(c *cluster.Cluster) []string {
	n := NamesOf(c)
	var out []string
	if generatesSuperuserSecret(c) {
		out = append(out, n.SuperuserSecret())
	}
	if c.AppSecretName() == "" {
		out = append(out, n.AppSecret())
	}
	return out
}

func generatesSuperuserSecret(c *cluster.Cluster) bool {
	return c.Spec.SuperuserAccess() && c.Spec.SuperuserSecretName() == ""
}

// SuperuserSecretName is the Secret the pods project the superuser's
// password from: the user's (spec.superuserSecret) or NAME-superuser.
func SuperuserSecretName(c *cluster.Cluster) string {
	if s := c.Spec.SuperuserSecretName(); s != "" {
		return s
	}
	return NamesOf(c).SuperuserSecret()
}

// AppSecretName is the Secret holding the application owner's password:
// the user's (spec.bootstrap.initdb.secret) or NAME-app.
func AppSecretName(c *cluster.Cluster) string {
	if s := c.AppSecretName(); s != "" {
		return s
	}
	return NamesOf(c).AppSecret()
}

// NewSecrets returns the credential Secrets of c that do not exist yet
// (exists reports a live Secret by name), with passwords drawn from random
// (crypto/rand.Reader in production). Existing Secrets are never returned,
// so a password is generated once and never rotated by accident; pgsync
// creates these with Create (never apply, never update) and never deletes
// them.
func NewSecrets(c *cluster.Cluster, exists func(name string) bool, random io.Reader) ([]*corev1.Secret, error) {
	n := NamesOf(c)
	var out []*corev1.Secret
	for _, s := range []struct {
		name, user string
		extra      map[string]string
	}{
		{n.SuperuserSecret(), pc.SuperUser, nil},
		{n.AppSecret(), c.AppOwner(), map[string]string{
			"dbname": c.AppDatabase(),
			"host":   n.RW() + "." + c.Metadata.Namespace + ".svc",
			"port":   strconv.Itoa(pc.PostgresPort),
		}},
	} {
		if exists(s.name) || !slices.Contains(SecretNames(c), s.name) {
			continue
		}
		pw, err := Password(random)
		if err != nil {
			return nil, fmt.Errorf("secret %s/%s: %w", c.Metadata.Namespace, s.name, err)
		}
		data := map[string][]byte{corev1.BasicAuthUsernameKey: []byte(s.user), corev1.BasicAuthPasswordKey: []byte(pw)}
		for k, v := range s.extra {
			data[k] = []byte(v)
		}
		out = append(out, &corev1.Secret{
			TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
			ObjectMeta: meta(c, s.name),
			Type:       corev1.SecretTypeBasicAuth,
			Data:       data,
		})
	}
	return out, nil
}

// NewCA returns the cluster's CA: the NAME-ca Secret (certificate and
// key, what the instance managers issue their certificates from) and the
// NAME-ca ConfigMap publishing the certificate to clients (sslrootcert for
// sslmode=verify-full). Generated once, like the credential Secrets:
// pgsync never reads the Secret back, so the ConfigMap is created with it.
func NewCA(c *cluster.Cluster, now time.Time, random io.Reader) (*corev1.Secret, *corev1.ConfigMap, error) {
	n := NamesOf(c)
	ca, err := tlscert.NewCA(fmt.Sprintf("pgsync %s/%s", c.Metadata.Namespace, c.Metadata.Name), now, random)
	if err != nil {
		return nil, nil, fmt.Errorf("CA of %s: %w", c.Key(), err)
	}
	sec := &corev1.Secret{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: meta(c, n.CASecret()),
		Type:       corev1.SecretTypeOpaque,
		Data:       map[string][]byte{pc.CACertKey: ca.CertPEM, pc.CAKeyKey: ca.KeyPEM},
	}
	cm := &corev1.ConfigMap{
		TypeMeta:   metav1.TypeMeta{APIVersion: "v1", Kind: "ConfigMap"},
		ObjectMeta: meta(c, n.CAConfigMap()),
		Data:       map[string]string{pc.CACertKey: string(ca.CertPEM)},
	}
	return sec, cm, nil
}

// Password draws PasswordLength characters of passwordAlphabet from random
// without modulo bias (rejection sampling).
func Password(random io.Reader) (string, error) {
	const limit = 256 - 256%len(passwordAlphabet) // 248: bytes ≥ limit are rejected
	out := make([]byte, 0, PasswordLength)
	buf := make([]byte, PasswordLength)
	for len(out) < PasswordLength {
		if _, err := io.ReadFull(random, buf); err != nil {
			return "", fmt.Errorf("generate password: %w", err)
		}
		for _, b := range buf {
			if int(b) < limit && len(out) < PasswordLength {
				out = append(out, passwordAlphabet[int(b)%len(passwordAlphabet)])
			}
		}
	}
	return string(out), nil
}
