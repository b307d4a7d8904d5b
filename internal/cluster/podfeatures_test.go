package cluster

import (
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const featuresBase = `apiVersion: postgresql.cnpg.io/v1
kind: Cluster
metadata:
  name: pg
spec:
  imageName: ghcr.io/cloudnative-pg/postgresql:16.4
  instances: 3
`

// TestStorageAndPodFeatureRefusals: each problem at its field and line,
// all in one pass; the accepted forms load.
func TestStorageAndPodFeatureRefusals(t *testing.T) {
	for _, tc := range []struct {
		name, spec string
		want       []string
	}{
		{"walStorage and pvcTemplate accepted", `  storage:
    pvcTemplate:
      accessModes: [ReadWriteOnce]
      resources: {requests: {storage: 5Gi}}
      storageClassName: standard
      volumeMode: Filesystem
  walStorage:
    size: 1Gi
    resizeInUseVolumes: false
`, nil},
		{"sizes missing", `  storage:
    storageClass: standard
  walStorage:
    storageClass: standard
`, []string{
			"c.yaml:9:5: spec.storage.size: required: the size of each instance's volume (e.g. 10Gi)",
			"c.yaml:11:5: spec.walStorage.size: required: the size of each instance's volume (e.g. 10Gi)",
		}},
		{"pvcTemplate refusals", `  storage:
    size: 1Gi
    pvcTemplate:
      volumeMode: Block
      accessModes: [ReadOnlyMany]
      resources: {requests: {cpu: "1"}}
      dataSource: {kind: VolumeSnapshot, name: snap, apiGroup: snapshot.storage.k8s.io}
      volumeName: pv-1
`, []string{
			"c.yaml:12:21: spec.storage.pvcTemplate.accessModes[0]: invalid access mode \"ReadOnlyMany\" (allowed: ReadWriteOnce, ReadWriteOncePod, ReadWriteMany; each instance mounts its own volume, read-write)",
			"c.yaml:11:19: spec.storage.pvcTemplate.volumeMode: refused: \"Block\"; PostgreSQL's files need a file system (allowed: Filesystem)",
			"c.yaml:13:35: spec.storage.pvcTemplate.resources.requests.cpu: unknown resource \"cpu\" of a volume claim (allowed: storage)",
			"c.yaml:14:19: spec.storage.pvcTemplate.dataSource: not supported by pgsync: every instance's volume starts empty (the primary runs initdb, a standby is cloned with pg_basebackup); a volume snapshot or cloned claim would be overwritten",
			"c.yaml:15:19: spec.storage.pvcTemplate.volumeName: not supported by pgsync: the template is every instance's claim, and one PersistentVolume can be bound to one claim only; pre-provision volumes with a selector instead",
		}},
		{"probes", `  storage: {size: 1Gi}
  probes:
    startup: {periodSeconds: 0, successThreshold: 2}
    readiness: {type: streaming, maximumLag: 16Mi, timeoutSeconds: 100000}
    liveness:
      isolationCheck: {enabled: true}
`, []string{
			"c.yaml:10:30: spec.probes.startup.periodSeconds: must be between 1 and 86400 (got 0)",
			"c.yaml:10:51: spec.probes.startup.successThreshold: must be 1 for a startup or liveness probe (Kubernetes' rule; got 2)",
			"c.yaml:11:68: spec.probes.readiness.timeoutSeconds: must be between 1 and 86400 (got 100000)",
			"c.yaml:11:23: spec.probes.readiness.type: not supported by pgsync: \"streaming\"; the probe asks the instance manager's /readyz, which is ready once postgres accepts connections (as pg_isready) — leave type unset or pg_isready",
			"c.yaml:11:46: spec.probes.readiness.maximumLag: not supported by pgsync: the lag limit belongs to the streaming probe type, which pgsync does not have",
			"c.yaml:13:23: spec.probes.liveness.isolationCheck: not supported by pgsync: the primary is fenced by its Lease instead (it stops writing when it cannot renew it, docs/design.md)",
		}},
		{"weaker than restricted", `  storage: {size: 1Gi}
  podSecurityContext:
    runAsNonRoot: false
    runAsUser: 0
    seccompProfile: {type: Unconfined}
    sysctls: [{name: kernel.msgmax, value: "1"}]
  securityContext:
    privileged: true
    allowPrivilegeEscalation: true
    readOnlyRootFilesystem: false
    capabilities: {add: [SYS_ADMIN], drop: [NET_RAW]}
    procMount: Unmasked
    seLinuxOptions: {user: root, type: spc_t}
`, []string{
			"c.yaml:10:19: spec.podSecurityContext.runAsNonRoot: refused by PodSecurity restricted: must be true",
			"c.yaml:11:16: spec.podSecurityContext.runAsUser: refused by PodSecurity restricted: must be at least 1 (got 0)",
			"c.yaml:12:28: spec.podSecurityContext.seccompProfile.type: refused by PodSecurity restricted: seccomp profile Unconfined (allowed: RuntimeDefault, Localhost)",
			"c.yaml:13:22: spec.podSecurityContext.sysctls[0].name: refused by PodSecurity restricted: \"kernel.msgmax\" is not a safe sysctl (allowed: kernel.shm_rmid_forced, net.ipv4.ip_local_port_range, net.ipv4.ip_unprivileged_port_start, net.ipv4.tcp_syncookies, net.ipv4.ping_group_range, net.ipv4.ip_local_reserved_ports, net.ipv4.tcp_keepalive_time, net.ipv4.tcp_fin_timeout, net.ipv4.tcp_keepalive_intvl, net.ipv4.tcp_keepalive_probes)",
			"c.yaml:15:17: spec.securityContext.privileged: refused by PodSecurity restricted: privileged containers",
			"c.yaml:16:31: spec.securityContext.allowPrivilegeEscalation: refused by PodSecurity restricted: must be false",
			"c.yaml:17:29: spec.securityContext.readOnlyRootFilesystem: refused: pgsync runs postgres on a read-only root file system (it writes only to its volumes, /tmp and /run)",
			"c.yaml:18:26: spec.securityContext.capabilities.add[0]: refused: adding capability \"SYS_ADMIN\"; postgres needs none, and PodSecurity restricted allows only NET_BIND_SERVICE",
			"c.yaml:18:44: spec.securityContext.capabilities.drop: refused by PodSecurity restricted: must include ALL",
			"c.yaml:19:16: spec.securityContext.procMount: refused by PodSecurity restricted: procMount \"Unmasked\" (allowed: Default)",
			"c.yaml:20:28: spec.securityContext.seLinuxOptions.user: refused by PodSecurity restricted: a custom SELinux user",
			"c.yaml:20:40: spec.securityContext.seLinuxOptions.type: refused by PodSecurity restricted: SELinux type \"spc_t\" (allowed: container_t, container_init_t, container_kvm_t, container_engine_t)",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, errs := load(t, File{Path: "c.yaml", Data: []byte(featuresBase + tc.spec)})
			var got []string
			for _, d := range errs {
				got = append(got, d.String())
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("diagnostics (-want +got):\n%s", diff)
			}
		})
	}
}

// A pvcTemplate's storage request and class become the claims' size and
// class when size and storageClass are not written (CloudNativePG).
func TestPVCTemplateFillsSizeAndClass(t *testing.T) {
	y := featuresBase + `  storage:
    storageClass: fast
    pvcTemplate:
      resources: {requests: {storage: 5Gi}}
      storageClassName: standard
  walStorage:
    size: 2Gi
    pvcTemplate:
      resources: {requests: {storage: 9Gi}}
      storageClassName: wal
`
	set, errs := load(t, File{Path: "c.yaml", Data: []byte(y)})
	if errs != nil {
		t.Fatal(errs)
	}
	s := set.Clusters[0].Spec
	got := strings.Join([]string{string(s.Storage.Size), *s.Storage.StorageClass, string(s.WALStorage.Size), *s.WALStorage.StorageClass}, " ")
	if want := "5Gi fast 2Gi wal"; got != want {
		t.Errorf("size/class: %s, want %s", got, want)
	}
	if !*s.WALStorage.ResizeInUseVolumes {
		t.Error("walStorage.resizeInUseVolumes defaults to true")
	}
}
