package kube

import (
	"fmt"

	"github.com/pgsync/pgsync/internal/cluster"
)

// FieldManager is the server-side apply field manager of everything pgsync
// renders. The instance manager writes with "pgsync-instance".
const FieldManager = "pgsync"

// Labels and annotations.
const (
	LabelManagedBy = "app.kubernetes.io/managed-by"
	ManagedBy      = "pgsync"
	LabelCluster   = "pgsync.io/cluster"
	// LabelRole is set on pods by the instance manager (primary, replica),
	// never rendered into the pod template.
	LabelRole = "pgsync.io/role"
	// LabelPodName is set on every pod by the StatefulSet controller; it is
	// the per-instance label (a pod template cannot carry per-pod labels).
	LabelPodName = "statefulset.kubernetes.io/pod-name"

	AnnRevision       = "pgsync.io/revision"
	AnnConfigRevision = "pgsync.io/config-revision"
	AnnAppliedSpec    = "pgsync.io/applied-spec"
	AnnTargetPrimary  = "pgsync.io/target-primary"
)

// Paths and ports inside the pod.
const (
	PostgresPort   = 5432
	HTTPPort       = 8000
	ControllerDir  = "/controller"
	DataMount      = "/var/lib/postgresql/data"
	PGData         = DataMount + "/pgdata"
	RunDir         = "/run/pgsync"
	ParamsDir      = "/etc/pgsync/params"
	ParamsKey      = "parameters.json"
	CredentialsDir = "/etc/pgsync/credentials"

	// AppUser and AppDatabase are the application role and database the
	// primary creates at bootstrap (as CloudNativePG's defaults).
	AppUser         = "app"
	AppDatabase     = "app"
	SuperUser       = "postgres"
	ReplicationUser = "streaming_replica"

	// PostgresUID is the postgres user and group of the operand images
	// (uid/gid 26, as CloudNativePG's images).
	PostgresUID = 26
)

// Names of one cluster's objects.
type Names struct{ c *cluster.Cluster }

// NamesOf returns the object names of c.
func NamesOf(c *cluster.Cluster) Names { return Names{c} }

func (n Names) base() string { return n.c.Metadata.Name }

// StatefulSet, ServiceAccount, Role and RoleBinding share the cluster's name.
func (n Names) StatefulSet() string { return n.base() }

// Instance is the pod of ordinal i.
func (n Names) Instance(i int) string { return fmt.Sprintf("%s-%d", n.base(), i) }

// RW is the selector-less Service and the EndpointSlice the primary rewrites.
func (n Names) RW() string { return n.base() + "-rw" }

// RO selects the standbys (role=replica).
func (n Names) RO() string { return n.base() + "-ro" }

// R selects every instance.
func (n Names) R() string { return n.base() + "-r" }

// Headless is the StatefulSet's governing Service (pod DNS).
func (n Names) Headless() string { return n.base() + "-hl" }

// Params is the ConfigMap of postgresql.parameters.
func (n Names) Params() string { return n.base() + "-params" }

// Lease is the primary Lease; also the primary's PodDisruptionBudget.
func (n Names) Lease() string { return n.base() + "-primary" }

// PrimaryPDB guards the primary; StandbyPDB every other instance.
func (n Names) PrimaryPDB() string { return n.base() + "-primary" }

// StandbyPDB guards every instance that is not the primary.
func (n Names) StandbyPDB() string { return n.base() + "-standby" }

// SuperuserSecret, AppSecret and ReplicationSecret hold the credentials.
func (n Names) SuperuserSecret() string { return n.base() + "-superuser" }

// AppSecret holds the application owner's credentials.
func (n Names) AppSecret() string { return n.base() + "-app" }

// ReplicationSecret holds streaming_replica's credentials.
func (n Names) ReplicationSecret() string { return n.base() + "-replication" }

// labels are on every object of the cluster.
func labels(c *cluster.Cluster) map[string]string {
	return map[string]string{LabelManagedBy: ManagedBy, LabelCluster: c.Metadata.Name}
}

// with returns a copy of m plus kv pairs.
func with(m map[string]string, kv ...string) map[string]string {
	out := make(map[string]string, len(m)+len(kv)/2)
	for k, v := range m {
		out[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		out[kv[i]] = kv[i+1]
	}
	return out
}

func ptr[T any](v T) *T { return &v }
