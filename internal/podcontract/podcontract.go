// Package podcontract is the contract between what pgsync renders into a
// cluster (internal/kube), the instance manager that runs in each pod
// (internal/instance) and what observes them (internal/observe): object
// names, labels, annotations, ConfigMap keys, environment variables, file
// paths, ports, the manager's command line and the /status document. A
// name shared by two of them exists here and only here.
//
// It is a leaf: it must not import `pgsync/...`, `k8s.io/client-go/...`,
// `github.com/jackc/pgx/...` or `github.com/go-git/...`.
package podcontract

import (
	"fmt"
	"strconv"
	"time"
)

// Field managers of server-side apply and of the managers' updates.
const (
	// FieldManager owns everything pgsync renders.
	FieldManager = "pgsync"
	// InstanceFieldManager owns what instance managers write: the Lease's
	// holder fields, the -rw endpoints, the role label.
	InstanceFieldManager = "pgsync-instance"
)

// Labels.
const (
	LabelManagedBy = "app.kubernetes.io/managed-by"
	ManagedBy      = "pgsync"
	// LabelCluster is on every object of a cluster; observation finds the
	// clusters pgsync manages by it.
	LabelCluster = "pgsync.io/cluster"
	// LabelInstance is set on a pod by its manager.
	LabelInstance = "pgsync.io/instance"
	// LabelRole is set on pods by the instance manager (RolePrimary,
	// RoleReplica), never rendered into the pod template.
	LabelRole = "pgsync.io/role"
	// LabelPodName is set on every pod by the StatefulSet controller; it is
	// the per-instance label (a pod template cannot carry per-pod labels).
	LabelPodName = "statefulset.kubernetes.io/pod-name"
)

// Values of LabelRole.
const (
	RolePrimary = "primary"
	RoleReplica = "replica"
)

// Annotations.
const (
	// AnnRevision and AnnConfigRevision are on the pod template, so every
	// pod carries the revision it was created from (internal/revision).
	AnnRevision       = "pgsync.io/revision"
	AnnConfigRevision = "pgsync.io/config-revision"
	// AnnConfigRequested is set on a pod by apply's reload-config while
	// its instance has not loaded the desired configuration: that revision
	// and when it was asked for. Nothing reads it: a change to the pod
	// makes the kubelet sync it at once, rewriting its ConfigMap volume,
	// which it otherwise does only on its periodic sync (a minute or more).
	AnnConfigRequested = "pgsync.io/config-requested"
	// AnnAppliedSpec is on the StatefulSet: the Cluster spec (JSON) the
	// objects were last applied from.
	AnnAppliedSpec = "pgsync.io/applied-spec"
	// AnnAppliedCommit is on the StatefulSet: the Git commit the objects
	// were last applied from ("" when applied from outside Git).
	AnnAppliedCommit = "pgsync.io/applied-commit"
	// AnnAppliedMetadata is on the StatefulSet, when the Cluster file has
	// labels or annotations: them (JSON {"labels":…,"annotations":…}), as
	// last applied — so the planner compares them with Git's like the
	// spec (without it every pgsync.io/ annotation in Git read as new).
	AnnAppliedMetadata = "pgsync.io/applied-metadata"
	// AnnApprovedRevision is on the StatefulSet, written by `pgsync
	// approve`: the revision whose primary update a human approved
	// (primaryUpdateStrategy: supervised).
	AnnApprovedRevision = "pgsync.io/approved-revision"
	// AnnHalted is on the StatefulSet while a rollout is halted: why.
	AnnHalted = "pgsync.io/halted"
	// AnnStepTimeout on the StatefulSet (or in the Cluster file's
	// metadata.annotations) overrides apply's step timeout ("10m").
	AnnStepTimeout = "pgsync.io/step-timeout"

	// AnnPrefix starts every annotation and label name of pgsync's. Of
	// those, a Cluster file may carry AnnStepTimeout and the four below
	// only (internal/cluster rejects any other; docs/annotations.md).
	AnnPrefix = "pgsync.io/"
	// AnnMaintenanceWindow in a Cluster file: when its steps that restart
	// or switch over may start (internal/window's grammar, "Sat
	// 02:00-04:00 Europe/Rome").
	AnnMaintenanceWindow = "pgsync.io/maintenance-window"
	// AnnSuspend "true" in a Cluster file stops every step of the
	// cluster.
	AnnSuspend = "pgsync.io/suspend"
	// AnnWave in a Cluster file orders rollouts across the fleet: a
	// non-negative integer, lower waves first (internal/fleet).
	AnnWave = "pgsync.io/wave"
	// AnnLeaseDuration in a Cluster file: the primary Lease's duration
	// (a Go duration, whole seconds, 3s to 5m; the manager's default 15s
	// when not set), passed to the managers as --lease-duration. Shorter
	// is a faster failover at the cost of more Lease writes and less
	// slack before a slow primary fences itself.
	AnnLeaseDuration = "pgsync.io/lease-duration"
	// AnnClients in a Cluster file: which pods of the namespace the
	// cluster's NetworkPolicy lets connect to 5432 — ClientsNamespace (the
	// default), ClientsCluster, or a label selector of pods
	// (docs/annotations.md).
	AnnClients = "pgsync.io/clients"
	// AnnStatusFrom in a Cluster file: comma-separated CIDRs that the
	// NetworkPolicy lets reach the status port too (the API server's
	// addresses, for --status-via=proxy where the network plugin does not
	// treat them as the node's).
	AnnStatusFrom = "pgsync.io/status-from"

	// AnnReconcile, set live on a cluster's StatefulSet (any new value;
	// `pgsync reconcile` writes the time), asks a running `pgsync run` for
	// a cycle now: a Git fetch and the next step of every cluster.
	AnnReconcile = "pgsync.io/reconcile"

	// On the primary Lease (DESIGN.md §4, §6).
	AnnTargetPrimary  = "pgsync.io/target-primary"
	AnnFinalLSN       = "pgsync.io/final-lsn"
	AnnReleasedBy     = "pgsync.io/released-by"
	AnnPrimaryAddress = "pgsync.io/primary-address"
	AnnSystemID       = "pgsync.io/system-identifier"
	// AnnPrimaryLSN is the holder's WAL position at its last renewal.
	AnnPrimaryLSN = "pgsync.io/primary-lsn"
	// AnnLastFailover is the last failover's record (JSON of Failover),
	// written by the instance that took the Lease over.
	AnnLastFailover = "pgsync.io/last-failover"
	// AnnAbdicated is set, with the reason, by a holder that gave the
	// Lease up because its postgres kept failing to start.
	AnnAbdicated = "pgsync.io/abdicated"
)

// Containers of an instance's pod.
const (
	ContainerPostgres  = "postgres"
	ContainerBootstrap = "bootstrap"
)

// Ports and HTTP paths of the postgres container.
const (
	PostgresPort = 5432
	HTTPPort     = 8000
	PortNamePG   = "postgres"
	PortNameHTTP = "http"

	PathHealthz = "/healthz"
	PathReadyz  = "/readyz"
	PathStatus  = "/status"
)

// The cluster's NetworkPolicy.
const (
	// PgsyncNamespace is the namespace pgsync runs in (deploy/namespace):
	// its pods may reach every instance's status port.
	PgsyncNamespace = "pgsync"
	// LabelAppName and AppNamePgsync label pgsync's own pods (deploy/run):
	// where pgsync runs in its clusters' namespace (--namespace), those
	// pods may reach the status port too.
	LabelAppName  = "app.kubernetes.io/name"
	AppNamePgsync = "pgsync"
	// LabelNamespaceName is the label the API server sets on every
	// Namespace to its name (selectable by a NetworkPolicy).
	LabelNamespaceName = "kubernetes.io/metadata.name"
	// Values of AnnClients besides a label selector: every pod of the
	// cluster's namespace (the default), or only the cluster's own pods.
	ClientsNamespace = "namespace"
	ClientsCluster   = "cluster"
)

// Paths inside the pod.
const (
	// ServiceAccountDir is where client-go's in-cluster configuration
	// (rest.InClusterConfig) reads the API token and CA; the pod mounts
	// its short-lived projected token there, in the postgres container
	// only.
	ServiceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount"
	// TokenExpirationSeconds is the projected API token's lifetime, the
	// shortest the API server issues: a token read out of a pod is
	// worthless ten minutes later. The kubelet renews it at 80 % and
	// client-go re-reads the file.
	TokenExpirationSeconds = 600
	ControllerDir          = "/controller"
	// Binary is the pgsync binary the init container copies into
	// ControllerDir; the postgres container runs it.
	Binary = ControllerDir + "/pgsync"
	// BootstrapBinary is where the pgsync image holds the binary.
	BootstrapBinary = "/pgsync"

	DataMount = "/var/lib/postgresql/data"
	PGData    = DataMount + "/pgdata"
	// WALMount is spec.walStorage's volume; WALDir, a subdirectory (the
	// volume's root may hold lost+found), is pg_wal (initdb and
	// pg_basebackup --waldir; PGDATA/pg_wal is a symlink to it).
	WALMount = "/var/lib/postgresql/wal"
	WALDir   = WALMount + "/pg_wal"
	RunDir   = "/run/pgsync"

	// ParamsDir is the mounted NAME-params ConfigMap.
	ParamsDir = "/etc/pgsync/params"
	// ParamsKey holds postgresql.parameters as a JSON object of strings.
	ParamsKey = "parameters.json"
	// ConfigRevisionKey holds the config revision of the same ConfigMap
	// version: what the manager publishes as loaded once it has reloaded.
	ConfigRevisionKey = "config-revision"
	ParamsFile        = ParamsDir + "/" + ParamsKey
	// ConfigRevisionFile is read from the same ConfigMap volume.
	ConfigRevisionFile = ParamsDir + "/" + ConfigRevisionKey

	// HBAKey holds spec.postgresql.pg_hba as a JSON array of strings, one
	// pg_hba.conf line each.
	HBAKey = "pg_hba.json"
	// HBAFile is read from the same ConfigMap volume; the manager finds it
	// next to the parameters file (no variable of its own).
	HBAFile = ParamsDir + "/" + HBAKey

	CredentialsDir          = "/etc/pgsync/credentials"
	SuperuserPasswordFile   = CredentialsDir + "/superuser-password"
	ReplicationPasswordFile = CredentialsDir + "/replication-password"
	AppPasswordFile         = CredentialsDir + "/app-password"
)

// Database roles and the application database the primary creates at
// bootstrap (CloudNativePG's defaults).
const (
	SuperUser       = "postgres"
	ReplicationUser = "streaming_replica"
	AppUser         = "app"
	AppDatabase     = "app"

	// PostgresUID is the postgres user and group of the operand images
	// (uid/gid 26, as CloudNativePG's images).
	PostgresUID = 26
)

// Environment variables of the postgres container. A credential variable
// NAME may instead be NAME_FILE, a path (FileSuffix).
const (
	EnvCluster             = "PGSYNC_CLUSTER"
	EnvPodName             = "POD_NAME"
	EnvPodNamespace        = "POD_NAMESPACE"
	EnvPodIP               = "POD_IP"
	EnvPGData              = "PGDATA"
	EnvWALDir              = "PGSYNC_WAL_DIR"
	EnvParametersFile      = "PGSYNC_PARAMETERS_FILE"
	EnvConfigRevisionFile  = "PGSYNC_CONFIG_REVISION_FILE"
	EnvSuperuserPassword   = "PGSYNC_SUPERUSER_PASSWORD"
	EnvReplicationPassword = "PGSYNC_REPLICATION_PASSWORD"
	EnvAppPassword         = "PGSYNC_APP_PASSWORD"
	EnvAppUser             = "PGSYNC_APP_USER"
	EnvAppDatabase         = "PGSYNC_APP_DATABASE"
	EnvAdvertiseAddress    = "PGSYNC_ADVERTISE_ADDRESS"
	EnvPGBin               = "PGSYNC_PG_BIN"

	FileSuffix = "_FILE"
)

// Flags of `pgsync instance run` that the rendered container passes.
const (
	FlagRunDir          = "run-dir"
	FlagPort            = "port"
	FlagHTTPAddr        = "http-addr"
	FlagStopDelay       = "stop-delay"
	FlagSwitchoverDelay = "switchover-delay"
	FlagFailoverDelay   = "failover-delay"
	FlagLeaseDuration   = "lease-duration"
)

// Run is what the rendered postgres container passes to `pgsync instance
// run` on its command line (the rest comes from the environment above).
type Run struct {
	RunDir   string
	Port     int
	HTTPAddr string
	// StopDelay bounds a smart shutdown (spec.stopDelay).
	StopDelay time.Duration
	// SwitchoverDelay bounds the old primary's shutdown in a switchover
	// (spec.switchoverDelay).
	SwitchoverDelay time.Duration
	// FailoverDelay is how long after the primary Lease's expiry the
	// standbys wait before they elect a new primary (spec.failoverDelay).
	// Passed only when set, so clusters without it keep their pod
	// template (and revision).
	FailoverDelay time.Duration
	// LeaseDuration is the primary Lease's duration (AnnLeaseDuration);
	// passed only when set, for the same reason.
	LeaseDuration time.Duration
	// MetricsAddr serves /metrics (spec.monitoring); passed only when
	// set, for the same reason. NoDefaultQueries leaves the PostgreSQL
	// metrics out.
	MetricsAddr      string
	NoDefaultQueries bool
	// MetricsQueries are the custom queries' files (MetricsQueriesPath),
	// in order; MetricsTLS serves /metrics over TLS.
	MetricsQueries []string
	MetricsTLS     bool
}

// RunCommand is the postgres container's command.
func RunCommand() []string { return []string{Binary, "instance", "run"} }

// Args renders r as the container's args.
func (r Run) Args() []string {
	args := []string{
		"--" + FlagRunDir + "=" + r.RunDir,
		"--" + FlagPort + "=" + strconv.Itoa(r.Port),
		"--" + FlagHTTPAddr + "=" + r.HTTPAddr,
		"--" + FlagStopDelay + "=" + r.StopDelay.String(),
		"--" + FlagSwitchoverDelay + "=" + r.SwitchoverDelay.String(),
	}
	if r.FailoverDelay > 0 {
		args = append(args, "--"+FlagFailoverDelay+"="+r.FailoverDelay.String())
	}
	if r.LeaseDuration > 0 {
		args = append(args, "--"+FlagLeaseDuration+"="+r.LeaseDuration.String())
	}
	if r.MetricsAddr != "" {
		args = append(args, "--"+FlagMetricsAddr+"="+r.MetricsAddr)
		if r.NoDefaultQueries {
			args = append(args, "--"+FlagMetricsDefaultQueries+"=false")
		}
		for _, q := range r.MetricsQueries {
			args = append(args, "--"+FlagMetricsQueries+"="+q)
		}
		if r.MetricsTLS {
			args = append(args, "--"+FlagMetricsTLS)
		}
	}
	return args
}

// StopMarker is the file (in RunDir) the manager writes once a stop asked
// by the preStop hook (SIGUSR2) has stopped postgres: the hook returns
// then, and the manager exits at the container's stop signal that
// follows. A hook still running when the container ends is reported by
// the kubelet as a FailedPreStopHook warning, at every pod deletion.
const StopMarker = "stopped"

// StopCommand is the preStop hook: a graceful stop of the manager, waited
// for at most timeout.
func StopCommand(timeout time.Duration) []string {
	return []string{Binary, "instance", "stop", "--timeout=" + timeout.String()}
}

// BootstrapCommand is the init container's command.
func BootstrapCommand() []string {
	return []string{BootstrapBinary, "instance", "bootstrap", "--to", ControllerDir}
}

// Names are the object names of one cluster, from its name alone (the
// instance manager knows nothing else).
type Names struct{ Cluster string }

// StatefulSet, ServiceAccount, Role and RoleBinding share the cluster's name.
func (n Names) StatefulSet() string { return n.Cluster }

// ServiceAccount of the instance managers.
func (n Names) ServiceAccount() string { return n.Cluster }

// Instance is the pod of ordinal i.
func (n Names) Instance(i int) string { return fmt.Sprintf("%s-%d", n.Cluster, i) }

// Ordinal is the ordinal of an instance (pod) name of this cluster; ok is
// false for any other name.
func (n Names) Ordinal(instance string) (int, bool) {
	prefix := n.Cluster + "-"
	if len(instance) <= len(prefix) || instance[:len(prefix)] != prefix {
		return 0, false
	}
	i, err := strconv.Atoi(instance[len(prefix):])
	if err != nil || i < 0 || strconv.Itoa(i) != instance[len(prefix):] {
		return 0, false
	}
	return i, true
}

// RW is the selector-less Service and the EndpointSlice the primary rewrites.
func (n Names) RW() string { return n.Cluster + "-rw" }

// RO selects the standbys (role=replica).
func (n Names) RO() string { return n.Cluster + "-ro" }

// R selects every instance.
func (n Names) R() string { return n.Cluster + "-r" }

// Headless is the StatefulSet's governing Service (pod DNS).
func (n Names) Headless() string { return n.Cluster + "-hl" }

// Params is the ConfigMap of postgresql.parameters.
func (n Names) Params() string { return n.Cluster + "-params" }

// Lease is the primary Lease.
func (n Names) Lease() string { return n.Cluster + "-primary" }

// ApplyLock is the Lease that makes one apply at a time the writer of the
// cluster.
func (n Names) ApplyLock() string { return n.Cluster + "-apply" }

// PrimaryPDB guards the primary.
func (n Names) PrimaryPDB() string { return n.Cluster + "-primary" }

// StandbyPDB guards every instance that is not the primary.
func (n Names) StandbyPDB() string { return n.Cluster + "-standby" }

// NetworkPolicy limits who reaches the instances' ports.
func (n Names) NetworkPolicy() string { return n.Cluster }

// SuperuserSecret holds the postgres superuser's credentials.
func (n Names) SuperuserSecret() string { return n.Cluster + "-superuser" }

// AppSecret holds the application owner's credentials.
func (n Names) AppSecret() string { return n.Cluster + "-app" }

// ReplicationSecret holds streaming_replica's credentials.
func (n Names) ReplicationSecret() string { return n.Cluster + "-replication" }

// PVC is the data volume claim of ordinal i (volumeClaimTemplate pgdata).
func (n Names) PVC(i int) string { return DataVolume + "-" + n.Instance(i) }

// DataVolume is the StatefulSet's volumeClaimTemplate name.
const DataVolume = "pgdata"

// WALPVC is the WAL volume claim of ordinal i (volumeClaimTemplate pgwal,
// spec.walStorage).
func (n Names) WALPVC(i int) string { return WALVolume + "-" + n.Instance(i) }

// WALVolume is the volumeClaimTemplate name of spec.walStorage.
const WALVolume = "pgwal"

// Address is the pod DNS name and port standbys use to reach an instance
// (its manager's default --advertise-address).
func (n Names) Address(instance, namespace string, port int) string {
	return fmt.Sprintf("%s.%s.%s.svc:%d", instance, n.Headless(), namespace, port)
}
