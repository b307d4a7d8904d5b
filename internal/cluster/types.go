package cluster

import "strings"

// Cluster is one PostgreSQL cluster as declared in Git, in the shape
// CloudNativePG and EDB Postgres for Kubernetes users already write.
// Field names and JSON tags follow CloudNativePG's v1 API so files move
// over unchanged; only the subset pgsync acts on is accepted, and anything
// else is an error rather than silently ignored.
type Cluster struct {
	APIVersion string   `json:"apiVersion"`
	Kind       string   `json:"kind"`
	Metadata   Metadata `json:"metadata"`
	Spec       Spec     `json:"spec"`

	// Source is where the document starts; Positions maps field paths
	// ("spec.instances", "spec.postgresql.parameters.work_mem") to where
	// their values are written, so later checks can point at the line.
	Source    Position            `json:"-"`
	Positions map[string]Position `json:"-"`
}

// Metadata is the subset of Kubernetes object metadata a Cluster carries.
type Metadata struct {
	Name        string            `json:"name"`
	Namespace   string            `json:"namespace"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
}

// Spec is the desired state of a cluster.
type Spec struct {
	Description string `json:"description"`
	// ImageName is the operand image; its tag carries the PostgreSQL
	// version (e.g. quay.io/enterprisedb/postgresql:13.1).
	ImageName string `json:"imageName"`
	// ImagePullPolicy: Always, IfNotPresent or Never.
	ImagePullPolicy string `json:"imagePullPolicy"`
	Instances       int    `json:"instances"`

	// PrimaryUpdateStrategy is "unsupervised" (roll the primary
	// automatically) or "supervised" (stop before the primary and wait for
	// approval).
	PrimaryUpdateStrategy string `json:"primaryUpdateStrategy"`
	// PrimaryUpdateMethod is "switchover" (default: promote an updated
	// standby first) or "restart" (restart the primary in place).
	PrimaryUpdateMethod string `json:"primaryUpdateMethod"`

	Storage    StorageConfiguration  `json:"storage"`
	PostgreSQL PostgresConfiguration `json:"postgresql"`
	Resources  ResourceRequirements  `json:"resources"`
	Affinity   AffinityConfiguration `json:"affinity"`

	// StartDelay is how long, in seconds, an instance may take to become
	// ready before the rollout halts.
	StartDelay int `json:"startDelay"`
	// StopDelay is how long, in seconds, a smart shutdown may take before
	// the instance manager escalates to a fast shutdown.
	StopDelay int `json:"stopDelay"`
	// SwitchoverDelay is how long, in seconds, the old primary may take to
	// shut down cleanly during a switchover.
	SwitchoverDelay int `json:"switchoverDelay"`
	// FailoverDelay is how long, in seconds, the standbys wait after the
	// primary's Lease expired before they elect a new primary (0, the
	// default: at once).
	FailoverDelay int `json:"failoverDelay"`
}

// StorageConfiguration describes the PGDATA volume of every instance.
type StorageConfiguration struct {
	// StorageClass is the PVC's storage class; nil means the cluster's
	// default class.
	StorageClass *string  `json:"storageClass"`
	Size         Quantity `json:"size"`
	// ResizeInUseVolumes allows growing PVCs of running instances
	// (default true, as in CloudNativePG).
	ResizeInUseVolumes *bool `json:"resizeInUseVolumes"`
}

// PostgresConfiguration is the PostgreSQL configuration pgsync manages.
type PostgresConfiguration struct {
	// Parameters are postgresql.conf settings; values are strings, as in
	// CloudNativePG.
	Parameters map[string]string `json:"parameters"`
	// PgHBA lines go into pg_hba.conf after pgsync's own rules (the
	// manager's socket, replication) and before the defaults (docs/objects.md).
	PgHBA []string `json:"pg_hba"`
}

// ResourceRequirements are the postgres container's requests and limits.
type ResourceRequirements struct {
	Requests map[string]Quantity `json:"requests"`
	Limits   map[string]Quantity `json:"limits"`
}

// AffinityConfiguration places instances on nodes.
type AffinityConfiguration struct {
	// EnablePodAntiAffinity spreads instances over nodes (default true).
	EnablePodAntiAffinity *bool `json:"enablePodAntiAffinity"`
	// TopologyKey for the anti-affinity rule (default kubernetes.io/hostname).
	TopologyKey string `json:"topologyKey"`
	// PodAntiAffinityType is "preferred" (default) or "required".
	PodAntiAffinityType string            `json:"podAntiAffinityType"`
	NodeSelector        map[string]string `json:"nodeSelector"`
	Tolerations         []Toleration      `json:"tolerations"`
}

// Toleration is a Kubernetes pod toleration.
type Toleration struct {
	Key               string `json:"key"`
	Operator          string `json:"operator"`
	Value             string `json:"value"`
	Effect            string `json:"effect"`
	TolerationSeconds *int   `json:"tolerationSeconds"`
}

// Position locates a value in a file of the repository.
type Position struct {
	File   string
	Line   int
	Column int
}

func (p Position) String() string {
	if p.Line == 0 {
		return p.File
	}
	return p.File + ":" + itoa(p.Line) + ":" + itoa(p.Column)
}

// Key is a cluster's identity: namespace/name.
type Key struct {
	Namespace string
	Name      string
}

func (k Key) String() string { return k.Namespace + "/" + k.Name }

// Less orders keys by namespace, then name: the order of every listing.
func (k Key) Less(o Key) bool {
	if k.Namespace != o.Namespace {
		return k.Namespace < o.Namespace
	}
	return k.Name < o.Name
}

// Key returns the cluster's namespace/name.
func (c *Cluster) Key() Key { return Key{Namespace: c.Metadata.Namespace, Name: c.Metadata.Name} }

// Pos returns where the field at path is written. For a field that was not
// written (required, or defaulted) it returns where its nearest written
// parent is, else the document start.
func (c *Cluster) Pos(path string) Position {
	for path != "" {
		if p, ok := c.Positions[path]; ok {
			return p
		}
		cut := strings.LastIndexAny(path, ".[")
		if cut < 0 {
			break
		}
		path = path[:cut]
	}
	return c.Source
}
