package kube

import (
	"strings"
	"testing"

	corev1 "k8s.io/api/core/v1"

	pc "github.com/pgsync/pgsync/internal/podcontract"
)

// features is testYAML with every storage and pod feature set, as a
// CloudNativePG user writes them.
func withFeatures(y string) string {
	y = strings.Replace(y, "  storage:\n    storageClass: standard\n    size: 1Gi\n", `  storage:
    pvcTemplate:
      accessModes: [ReadWriteOncePod]
      resources:
        requests: {storage: 2Gi}
      storageClassName: standard
      volumeMode: Filesystem
      selector:
        matchLabels: {tier: fast}
  walStorage:
    size: 512Mi
    storageClass: wal-ssd
  probes:
    startup: {periodSeconds: 5, failureThreshold: 40}
    readiness: {periodSeconds: 2, timeoutSeconds: 3, failureThreshold: 6, successThreshold: 2}
    liveness: {initialDelaySeconds: 15, periodSeconds: 20, timeoutSeconds: 4}
  podSecurityContext:
    runAsUser: 1001
    runAsGroup: 1002
    fsGroup: 1003
    fsGroupChangePolicy: Always
    supplementalGroups: [2000]
    seccompProfile: {type: RuntimeDefault}
    sysctls: [{name: net.ipv4.tcp_keepalive_time, value: "60"}]
  securityContext:
    runAsNonRoot: true
    allowPrivilegeEscalation: false
    readOnlyRootFilesystem: true
    capabilities: {drop: [ALL]}
    seccompProfile: {type: RuntimeDefault}
`, 1)
	return y
}

func TestRenderStorageAndPodFeatures(t *testing.T) {
	sts := render(t, loadCluster(t, withFeatures)).StatefulSet
	claims := sts.Spec.VolumeClaimTemplates
	if len(claims) != 2 {
		t.Fatalf("volume claim templates: %d, want pgdata and pgwal", len(claims))
	}
	data, wal := claims[0], claims[1]
	same(t, data.Name, pc.DataVolume)
	same(t, wal.Name, pc.WALVolume)
	// pvcTemplate: its size and class fill size and storageClass.
	same(t, data.Spec.Resources.Requests.Storage().String(), "2Gi")
	same(t, *data.Spec.StorageClassName, "standard")
	same(t, data.Spec.AccessModes, []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOncePod})
	same(t, data.Spec.Selector.MatchLabels, map[string]string{"tier": "fast"})
	same(t, wal.Spec.Resources.Requests.Storage().String(), "512Mi")
	same(t, *wal.Spec.StorageClassName, "wal-ssd")
	same(t, wal.Spec.AccessModes, []corev1.PersistentVolumeAccessMode{corev1.ReadWriteOnce})
	same(t, wal.Labels, data.Labels)

	pod := sts.Spec.Template.Spec
	pg := pod.Containers[0]
	var mounted, env bool
	for _, m := range pg.VolumeMounts {
		mounted = mounted || m.Name == pc.WALVolume && m.MountPath == pc.WALMount
	}
	for _, e := range pg.Env {
		env = env || e.Name == pc.EnvWALDir && e.Value == pc.WALDir
	}
	if !mounted || !env {
		t.Errorf("WAL volume mounted %v, %s set %v", mounted, pc.EnvWALDir, env)
	}
	if !strings.HasPrefix(pc.WALDir, pc.WALMount+"/") {
		t.Errorf("WALDir %s is not inside its volume %s", pc.WALDir, pc.WALMount)
	}

	same(t, probe(pg.StartupProbe), "GET /readyz :http every 5s ×40")
	same(t, probe(pg.ReadinessProbe), "GET /readyz :http every 2s ×6")
	same(t, pg.ReadinessProbe.TimeoutSeconds, int32(3))
	same(t, pg.ReadinessProbe.SuccessThreshold, int32(2))
	same(t, probe(pg.LivenessProbe), "GET /healthz :http every 20s ×3")
	same(t, pg.LivenessProbe.InitialDelaySeconds, int32(15))
	same(t, pg.LivenessProbe.TimeoutSeconds, int32(4))

	psc := pod.SecurityContext
	same(t, *psc.RunAsUser, int64(1001))
	same(t, *psc.RunAsGroup, int64(1002))
	same(t, *psc.FSGroup, int64(1003))
	same(t, *psc.FSGroupChangePolicy, corev1.FSGroupChangeAlways)
	same(t, psc.SupplementalGroups, []int64{2000})
	same(t, *psc.RunAsNonRoot, true)
	same(t, psc.Sysctls, []corev1.Sysctl{{Name: "net.ipv4.tcp_keepalive_time", Value: "60"}})
	sc := pg.SecurityContext
	same(t, *sc.AllowPrivilegeEscalation, false)
	same(t, *sc.ReadOnlyRootFilesystem, true)
	same(t, sc.Capabilities.Drop, []corev1.Capability{"ALL"})
	same(t, sc.SeccompProfile.Type, corev1.SeccompProfileTypeRuntimeDefault)
}

func TestRenderProbeDefaults(t *testing.T) {
	for _, tc := range []struct {
		name, probes                 string
		startup, readiness, liveness string
	}{
		{"none", "", "GET /readyz :http every 1s ×60", "GET /readyz :http every 1s ×3", "GET /healthz :http every 10s ×3"},
		// A startup period alone keeps startDelay (60 s) as the budget.
		{"startup period only", "  probes:\n    startup: {periodSeconds: 10}\n", "GET /readyz :http every 10s ×6", "GET /readyz :http every 1s ×3", "GET /healthz :http every 10s ×3"},
		{"liveness threshold only", "  probes:\n    liveness: {failureThreshold: 9}\n", "GET /readyz :http every 1s ×60", "GET /readyz :http every 1s ×3", "GET /healthz :http every 10s ×9"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := loadCluster(t, func(y string) string { return y + tc.probes })
			pg := render(t, c).StatefulSet.Spec.Template.Spec.Containers[0]
			same(t, probe(pg.StartupProbe), tc.startup)
			same(t, probe(pg.ReadinessProbe), tc.readiness)
			same(t, probe(pg.LivenessProbe), tc.liveness)
		})
	}
}

// Without walStorage the pod has one claim and no WAL variable: existing
// clusters keep their StatefulSet.
func TestRenderNoWALStorage(t *testing.T) {
	sts := render(t, loadCluster(t, nil)).StatefulSet
	same(t, len(sts.Spec.VolumeClaimTemplates), 1)
	for _, e := range sts.Spec.Template.Spec.Containers[0].Env {
		if e.Name == pc.EnvWALDir {
			t.Errorf("%s set without walStorage", pc.EnvWALDir)
		}
	}
}
