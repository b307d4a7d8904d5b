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
	// DecodeProblems are the problems decoding found in the document (a
	// Cluster of Set.Invalid): later checks skip the fields they name, so
	// that no problem is reported twice.
	DecodeProblems []Diagnostic `json:"-"`

	// ImageFrom says where Spec.ImageName came from when the file does not
	// write it: "ImageCatalog NS/NAME, major N", "ClusterImageCatalog
	// NAME, major N" or "pgsync's default image" (Load). Empty when the
	// file writes imageName.
	ImageFrom string `json:"-"`
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
	// version (e.g. quay.io/enterprisedb/postgresql:13.1). Optional: Load
	// sets it to the image of ImageCatalogRef, or to the default image
	// (DefaultImageName, Options.DefaultImage), so every later stage sees
	// the image the pods run (Cluster.ImageFrom says where it came from).
	ImageName string `json:"imageName"`
	// ImageCatalogRef takes the image from an ImageCatalog or
	// ClusterImageCatalog file of the repository (catalog.go).
	ImageCatalogRef *ImageCatalogRef `json:"imageCatalogRef"`
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

	Storage StorageConfiguration `json:"storage"`
	// WALStorage, when set, gives every instance a second volume for
	// pg_wal (initdb --waldir, pg_basebackup --waldir).
	WALStorage *StorageConfiguration `json:"walStorage"`
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
	// MinSyncReplicas and MaxSyncReplicas are CloudNativePG's legacy
	// synchronous replication (ANY over the streaming standbys; 0: off).
	MinSyncReplicas int `json:"minSyncReplicas"`
	MaxSyncReplicas int `json:"maxSyncReplicas"`
	// FailoverDelay is how long, in seconds, the standbys wait after the
	// primary's Lease expired before they elect a new primary (0, the
	// default: at once).
	FailoverDelay int `json:"failoverDelay"`

	// Probes tune the postgres container's startup, liveness and
	// readiness probes (the instance manager's health endpoints).
	Probes *ProbesConfiguration `json:"probes"`
	// PodSecurityContext and SecurityContext are merged into the
	// restricted contexts pgsync renders; anything weaker is refused.
	PodSecurityContext *PodSecurityContext `json:"podSecurityContext"`
	SecurityContext    *SecurityContext    `json:"securityContext"`

	// Bootstrap: how the first primary creates the database (initdb.go).
	Bootstrap *BootstrapConfiguration `json:"bootstrap"`

	// EnableSuperuserAccess: the superuser has a password (the
	// SuperuserSecret's) and may log in over the network with it; off
	// (the default, as CloudNativePG's) its password is NULL and remote
	// logins as it are refused (superuser.go).
	EnableSuperuserAccess *bool `json:"enableSuperuserAccess"`
	// SuperuserSecret: a basic-auth Secret of the user's with the
	// superuser's password (else pgsync generates NAME-superuser while
	// access is on).
	SuperuserSecret *LocalObjectReference `json:"superuserSecret"`

	// Managed: the roles the primary's manager keeps (roles.go).
	Managed *ManagedConfiguration `json:"managed"`

	// ReplicationSlots: the HA slots and the copies of the user's
	// physical slots on the standbys (slots.go); nil: the defaults.
	ReplicationSlots *ReplicationSlotsConfiguration `json:"replicationSlots"`
	// Monitoring: the instances' /metrics endpoint (monitoring.go).
	Monitoring *MonitoringConfiguration `json:"monitoring"`
	// Certificates is spec.certificates (certificates.go).
	Certificates *CertificatesConfiguration `json:"certificates"`

	// Pod scheduling and pulling, copied into the pod template
	// (scheduling.go).
	ImagePullSecrets          []LocalObjectReference      `json:"imagePullSecrets"`
	PriorityClassName         string                      `json:"priorityClassName"`
	SchedulerName             string                      `json:"schedulerName"`
	TopologySpreadConstraints []TopologySpreadConstraint  `json:"topologySpreadConstraints"`
	EphemeralVolumesSizeLimit *EphemeralVolumesSizeLimits `json:"ephemeralVolumesSizeLimit"`
}

// ProbesConfiguration is CloudNativePG's spec.probes.
type ProbesConfiguration struct {
	Startup   *ProbeWithStrategy `json:"startup"`
	Liveness  *LivenessProbe     `json:"liveness"`
	Readiness *ProbeWithStrategy `json:"readiness"`
}

// Probe is the timing of one probe; nil fields keep pgsync's defaults.
type Probe struct {
	InitialDelaySeconds           *int `json:"initialDelaySeconds"`
	TimeoutSeconds                *int `json:"timeoutSeconds"`
	PeriodSeconds                 *int `json:"periodSeconds"`
	SuccessThreshold              *int `json:"successThreshold"`
	FailureThreshold              *int `json:"failureThreshold"`
	TerminationGracePeriodSeconds *int `json:"terminationGracePeriodSeconds"`
}

// ProbeWithStrategy is a startup or readiness probe. Type and MaximumLag
// are decoded so that they are refused by name (the manager's /readyz is
// pgsync's one strategy).
type ProbeWithStrategy struct {
	Probe      `json:",inline"`
	Type       string   `json:"type,omitempty"`
	MaximumLag Quantity `json:"maximumLag,omitempty"`
}

// LivenessProbe is the liveness probe; IsolationCheck is decoded so that
// it is refused by name.
type LivenessProbe struct {
	Probe          `json:",inline"`
	IsolationCheck *IsolationCheck `json:"isolationCheck"`
}

// IsolationCheck is CloudNativePG's primary isolation check.
type IsolationCheck struct {
	Enabled           *bool `json:"enabled"`
	RequestTimeout    *int  `json:"requestTimeout"`
	ConnectionTimeout *int  `json:"connectionTimeout"`
}

// PodSecurityContext is the subset of Kubernetes' PodSecurityContext a
// Cluster may set; fields PodSecurity restricted forbids weakening are
// decoded so that weakening them is refused by name.
type PodSecurityContext struct {
	RunAsUser           *int            `json:"runAsUser"`
	RunAsGroup          *int            `json:"runAsGroup"`
	RunAsNonRoot        *bool           `json:"runAsNonRoot"`
	FSGroup             *int            `json:"fsGroup"`
	FSGroupChangePolicy string          `json:"fsGroupChangePolicy"`
	SupplementalGroups  []int           `json:"supplementalGroups"`
	SeccompProfile      *SeccompProfile `json:"seccompProfile"`
	SELinuxOptions      *SELinuxOptions `json:"seLinuxOptions"`
	Sysctls             []Sysctl        `json:"sysctls"`
}

// SecurityContext is the subset of Kubernetes' container SecurityContext
// a Cluster may set, applied to the postgres container.
type SecurityContext struct {
	RunAsUser                *int            `json:"runAsUser"`
	RunAsGroup               *int            `json:"runAsGroup"`
	RunAsNonRoot             *bool           `json:"runAsNonRoot"`
	Privileged               *bool           `json:"privileged"`
	AllowPrivilegeEscalation *bool           `json:"allowPrivilegeEscalation"`
	ReadOnlyRootFilesystem   *bool           `json:"readOnlyRootFilesystem"`
	Capabilities             *Capabilities   `json:"capabilities"`
	SeccompProfile           *SeccompProfile `json:"seccompProfile"`
	SELinuxOptions           *SELinuxOptions `json:"seLinuxOptions"`
	ProcMount                string          `json:"procMount"`
}

// SeccompProfile is a Kubernetes seccomp profile.
type SeccompProfile struct {
	Type             string `json:"type"`
	LocalhostProfile string `json:"localhostProfile"`
}

// SELinuxOptions are Kubernetes SELinux labels.
type SELinuxOptions struct {
	User  string `json:"user"`
	Role  string `json:"role"`
	Type  string `json:"type"`
	Level string `json:"level"`
}

// Sysctl is a namespaced kernel parameter of a pod.
type Sysctl struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// Capabilities are added and dropped Linux capabilities.
type Capabilities struct {
	Add  []string `json:"add"`
	Drop []string `json:"drop"`
}

// StorageConfiguration describes the PGDATA volume of every instance.
type StorageConfiguration struct {
	// StorageClass is the PVC's storage class; nil means the cluster's
	// default class.
	StorageClass *string  `json:"storageClass"`
	Size         Quantity `json:"size,omitempty"`
	// ResizeInUseVolumes allows growing PVCs of running instances
	// (default true, as in CloudNativePG).
	ResizeInUseVolumes *bool `json:"resizeInUseVolumes"`
	// PVCTemplate is merged into the claim pgsync renders, as in
	// CloudNativePG: size and storageClass, when set, win over the
	// template's storage request and storageClassName.
	PVCTemplate *PVCTemplate `json:"pvcTemplate"`
}

// PVCTemplate is the subset of a PersistentVolumeClaimSpec pgsync honours;
// dataSource, dataSourceRef and volumeName are decoded so that they are
// refused by name.
type PVCTemplate struct {
	AccessModes               []string             `json:"accessModes"`
	VolumeMode                string               `json:"volumeMode"`
	StorageClassName          *string              `json:"storageClassName"`
	Resources                 ResourceRequirements `json:"resources"`
	Selector                  *LabelSelector       `json:"selector"`
	VolumeAttributesClassName *string              `json:"volumeAttributesClassName"`
	DataSource                *ObjectReference     `json:"dataSource"`
	DataSourceRef             *ObjectReference     `json:"dataSourceRef"`
	VolumeName                string               `json:"volumeName"`
}

// LabelSelector selects PersistentVolumes by label.
type LabelSelector struct {
	MatchLabels      map[string]string          `json:"matchLabels"`
	MatchExpressions []LabelSelectorRequirement `json:"matchExpressions"`
}

// LabelSelectorRequirement is one matchExpressions entry.
type LabelSelectorRequirement struct {
	Key      string   `json:"key"`
	Operator string   `json:"operator"`
	Values   []string `json:"values"`
}

// ObjectReference is a PVC data source.
type ObjectReference struct {
	APIGroup  *string `json:"apiGroup"`
	Kind      string  `json:"kind"`
	Name      string  `json:"name"`
	Namespace *string `json:"namespace"`
}

// PostgresConfiguration is the PostgreSQL configuration pgsync manages.
type PostgresConfiguration struct {
	// Parameters are postgresql.conf settings; values are strings, as in
	// CloudNativePG.
	Parameters map[string]string `json:"parameters"`
	// PgHBA lines go into pg_hba.conf after pgsync's own rules (the
	// manager's socket, replication) and before the defaults (docs/objects.md).
	PgHBA []string `json:"pg_hba"`
	// Synchronous turns on synchronous replication; nil: asynchronous.
	Synchronous *SynchronousReplicaConfiguration `json:"synchronous"`
}

// SynchronousReplicaConfiguration is CloudNativePG's
// spec.postgresql.synchronous: the primary's manager derives
// synchronous_standby_names from it and the standbys that stream
// (docs/instance-manager.md).
type SynchronousReplicaConfiguration struct {
	// Method is "any" (quorum) or "first" (priority).
	Method string `json:"method"`
	// Number of synchronous standbys a commit waits for (> 0).
	Number int `json:"number"`
	// MaxStandbyNamesFromCluster bounds how many of the cluster's
	// instances are listed (nil: all).
	MaxStandbyNamesFromCluster *int `json:"maxStandbyNamesFromCluster"`
	// StandbyNamesPre and StandbyNamesPost are application_names listed
	// before and after the cluster's instances.
	StandbyNamesPre  []string `json:"standbyNamesPre"`
	StandbyNamesPost []string `json:"standbyNamesPost"`
	// DataDurability is "required" (default: commits wait) or "preferred"
	// (only streaming standbys are listed, the number lowered to them).
	DataDurability string `json:"dataDurability"`
	// FailoverQuorum is CloudNativePG's quorum check before a failover;
	// pgsync's election always makes it (docs/instance-manager.md), so
	// only true (or nothing) is accepted.
	FailoverQuorum *bool `json:"failoverQuorum"`
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
	// NodeAffinity is the pods' node affinity; the two additional sets
	// of pod (anti-)affinity terms are added to pgsync's own
	// anti-affinity (scheduling.go).
	NodeAffinity              *NodeAffinity `json:"nodeAffinity"`
	AdditionalPodAntiAffinity *PodAffinity  `json:"additionalPodAntiAffinity"`
	AdditionalPodAffinity     *PodAffinity  `json:"additionalPodAffinity"`
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
