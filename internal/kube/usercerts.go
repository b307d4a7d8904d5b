package kube

import (
	"path"
	"slices"

	corev1 "k8s.io/api/core/v1"

	"github.com/pgsync/pgsync/internal/cluster"
	pc "github.com/pgsync/pgsync/internal/podcontract"
)

// volCerts projects spec.certificates' Secrets of the user's.
const volCerts = "certs"

// mountUserCertificates projects the Secrets spec.certificates names into
// the postgres container at pc.CertsDir, a directory each, and names each
// directory in its variable (docs/security.md, "Certificates of your
// own"). A CA's key is projected only when the manager must issue from it
// (no certificate of the user's for it). Not optional: without a Secret,
// or a key, the kubelet holds the pod before it starts (FailedMount),
// which is better than an instance serving a certificate other than the
// one the user named; apply's wait names the Secrets (UserCertificateSecrets).
// Nothing changes for a cluster without them (invariant 8).
func mountUserCertificates(c *cluster.Cluster, spec *corev1.PodSpec) {
	k := c.UserCertificates()
	if !k.Any() {
		return
	}
	var sources []corev1.VolumeProjection
	var env []corev1.EnvVar
	add := func(secret, dir, envName string, keys ...string) {
		if secret == "" {
			return
		}
		p := &corev1.SecretProjection{LocalObjectReference: corev1.LocalObjectReference{Name: secret}, Optional: ptr(false)}
		for _, key := range keys {
			p.Items = append(p.Items, corev1.KeyToPath{Key: key, Path: dir + "/" + key})
		}
		sources = append(sources, corev1.VolumeProjection{Secret: p})
		env = append(env, corev1.EnvVar{Name: envName, Value: path.Join(pc.CertsDir, dir)})
	}
	caKeys := func(leafGiven bool) []string {
		if leafGiven {
			return []string{pc.CACertKey}
		}
		return []string{pc.CACertKey, pc.CAKeyKey}
	}
	add(k.ServerCASecret, pc.ServerCASubdir, pc.EnvServerCADir, caKeys(k.ServerTLSSecret != "")...)
	add(k.ServerTLSSecret, pc.ServerTLSSubdir, pc.EnvServerTLSDir, pc.TLSCertKey, pc.TLSKeyKey)
	add(k.ClientCASecret, pc.ClientCASubdir, pc.EnvClientCADir, caKeys(k.ReplicationTLSSecret != "")...)
	add(k.ReplicationTLSSecret, pc.ReplicationTLSSubdir, pc.EnvReplicationTLSDir, pc.TLSCertKey, pc.TLSKeyKey)
	// As the credentials: group-readable only (the manager copies the
	// keys into its run directory, 0600, as postgres requires).
	spec.Volumes = append(spec.Volumes, corev1.Volume{Name: volCerts, VolumeSource: corev1.VolumeSource{
		Projected: &corev1.ProjectedVolumeSource{DefaultMode: ptr(int32(0o440)), Sources: sources}}})
	for i := range spec.Containers {
		if spec.Containers[i].Name == pc.ContainerPostgres {
			spec.Containers[i].Env = append(spec.Containers[i].Env, env...)
			spec.Containers[i].VolumeMounts = append(spec.Containers[i].VolumeMounts,
				corev1.VolumeMount{Name: volCerts, MountPath: pc.CertsDir, ReadOnly: true})
		}
	}
}

// UserCertificateSecrets are the Secrets of the user's that c's pods
// mount and cannot start without, deduplicated, in spec order.
func UserCertificateSecrets(c *cluster.Cluster) []string {
	k := c.UserCertificates()
	var out []string
	for _, s := range []string{k.ServerCASecret, k.ServerTLSSecret, k.ClientCASecret, k.ReplicationTLSSecret} {
		if s != "" && !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}
