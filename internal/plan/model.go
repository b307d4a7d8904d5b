package plan

import (
	"github.com/pgsync/pgsync/internal/cluster"
	"github.com/pgsync/pgsync/internal/revision"
)

// FormatVersion is the version of the JSON plan format. Bump it for any
// incompatible change; additions keep it.
const FormatVersion = "1"

// Action is what a plan does to a whole cluster.
type Action string

const (
	ActionCreate Action = "create"
	ActionUpdate Action = "update"
	ActionDelete Action = "delete"
	ActionOrphan Action = "orphan"
	ActionNoOp   Action = "no-op"
)

// Actions lists cluster actions in summary order.
var Actions = []Action{ActionCreate, ActionUpdate, ActionDelete, ActionOrphan, ActionNoOp}

// StepAction is what one step does.
type StepAction string

const (
	StepCreateInstance  StepAction = "create-instance"
	StepRestartInstance StepAction = "restart-instance"
	StepSwitchover      StepAction = "switchover"
	StepAwaitApproval   StepAction = "await-approval"
	StepReloadConfig    StepAction = "reload-config"
	StepRemoveInstance  StepAction = "remove-instance"
	StepResizeVolume    StepAction = "resize-volume"
	// StepResizeWALVolume grows an instance's WAL volume (spec.walStorage).
	StepResizeWALVolume StepAction = "resize-wal-volume"
	StepDeleteCluster   StepAction = "delete-cluster"
	StepUpdateObjects   StepAction = "update-objects"
	// StepRotateCA creates the cluster CA's next generation, a year
	// before the newest expires (docs/security.md).
	StepRotateCA StepAction = "rotate-ca"
)

// Phase is one of the planner's fixed phases; a plan's steps come in this
// order (Phases).
type Phase string

const (
	// PhaseObjects applies the spec to the cluster's objects (and deletes
	// them for a cluster removed from Git).
	PhaseObjects Phase = "objects"
	// PhaseReload reloads reload-only configuration.
	PhaseReload Phase = "reload"
	// PhaseResize grows volumes.
	PhaseResize Phase = "resize"
	// PhaseScaleDown removes instances, first moving the primary off them.
	PhaseScaleDown Phase = "scale-down"
	// PhaseScaleUp creates instances; a new cluster's are created here too.
	PhaseScaleUp Phase = "scale-up"
	// PhaseRollingStandbys restarts outdated standbys, one at a time.
	PhaseRollingStandbys Phase = "rolling-standbys"
	// PhasePrimary updates the primary last: approval, switchover and the
	// former primary's restart, or its restart in place.
	PhasePrimary Phase = "primary"
)

// Phases lists the phases in plan order.
var Phases = []Phase{PhaseObjects, PhaseReload, PhaseResize, PhaseScaleDown, PhaseScaleUp, PhaseRollingStandbys, PhasePrimary}

// NoOrdinal is the Ordinal of a cluster-wide step and the TargetOrdinal of
// every step but a switchover. Not 0, which is an instance's ordinal.
const NoOrdinal = -1

// Role of an instance when its step runs.
type Role string

const (
	RolePrimary Role = "primary"
	RoleStandby Role = "standby"
)

// Plan is the whole plan: one entry per cluster, sorted by namespace/name.
type Plan struct {
	// Base and Head are the commits compared; Base is empty for --offline
	// and for live plans.
	Base, Head string
	// Mode says what the plan started from.
	Mode     Mode
	Clusters []ClusterPlan
	// InstanceImage is the image policy's verdict on the instance image
	// (--instance-image: the pgsync binary in every pod), set by
	// WithImages under --image-policy; nil otherwise.
	InstanceImage *ImageCheck
}

// ImageCheck is the image policy's verdict (--image-policy) on an image a
// rollout uses, as the shell found it through the registry
// (internal/imagegate): what every renderer shows, and what a saved plan
// records so that apply can refuse it when a tag has moved since.
type ImageCheck struct {
	// Image is the image as named: the cluster's imageName (from its
	// file, catalog or pgsync's default) or --instance-image.
	Image string
	// Pinned is what is rolled: Image with the verified digest
	// (REPO:TAG@sha256:…), or Image itself under a rule that asks for no
	// digest.
	Pinned string
	// Digest is the verified digest ("" when the rule asked for none).
	Digest string
	// SignedBy are the policy's keys that verified a signature of Digest.
	SignedBy []string
	// Reason is the policy's sentence, naming the rule that decided.
	Reason string
}

// Mode is what a plan starts from.
type Mode string

const (
	// ModeOffline: nothing runs; every cluster is created.
	ModeOffline Mode = "offline"
	// ModeBase: the clusters of another commit, as if converged to it.
	ModeBase Mode = "base"
	// ModeLive: what runs in Kubernetes.
	ModeLive Mode = "live"
)

// ClusterPlan is what happens to one cluster.
type ClusterPlan struct {
	Namespace, Name string
	Action          Action
	Changes         []Change
	Steps           []Step
	Warnings        []string
	// Observed fingerprints the observed state the plan started from
	// (Fingerprint); empty for a cluster that does not run.
	Observed string
	// Halted names the instance that halts the rollout: it runs the
	// desired revision and is not ready. Nothing further is planned.
	Halted string
	// Window, when set by WithWindows, is the maintenance window the
	// cluster's restarts and switchovers wait for.
	Window *WindowState
	// ImageFrom says where the cluster's image comes from when its file
	// does not write imageName (cluster.Cluster.ImageFrom: an image
	// catalog, or pgsync's default image), so a reviewer sees which image
	// it gets and why it changes; empty otherwise.
	ImageFrom string
	// Image is the image policy's verdict on the cluster's image, set by
	// WithImages under --image-policy; nil otherwise.
	Image *ImageCheck
}

// Change is one field that differs between observed and desired. A nil
// Before or After means the field is unset on that side.
type Change struct {
	Path          string
	Before, After *string
}

// Step is one unit of work that apply carries out, observing the cluster
// again before the next.
type Step struct {
	Action StepAction
	// Instance is "<cluster>-<ordinal>"; empty for cluster-wide steps.
	Instance string
	// Ordinal is Instance's ordinal; NoOrdinal for cluster-wide steps.
	Ordinal int
	// TargetOrdinal is a switchover's new primary (To); NoOrdinal for
	// every other step.
	TargetOrdinal int
	// Phase is the planner phase the step belongs to.
	Phase Phase
	// Role is the instance's role when the step runs.
	Role Role
	// From and To: the images of a restart, the old and new primary of a
	// switchover, the sizes of a resize.
	From, To string
	Reason   string
	// Downtime marks steps during which the cluster takes no writes.
	Downtime bool
}

// Summary counts clusters by action.
func (p *Plan) Summary() map[Action]int {
	s := map[Action]int{}
	for _, a := range Actions {
		s[a] = 0
	}
	for _, c := range p.Clusters {
		s[c.Action]++
	}
	return s
}

// HasChanges reports whether applying the plan would change anything; it
// decides exit code 2 under --detailed-exitcode.
func (p *Plan) HasChanges() bool {
	for _, c := range p.Clusters {
		if c.Action != ActionNoOp {
			return true
		}
	}
	return false
}

// Observed is the state the plan starts from.
type Observed struct {
	Clusters []ObservedCluster
	// PodMonitorKind: whether the API server serves the Prometheus
	// Operator's PodMonitor, asked by a live observation when a desired
	// cluster has enablePodMonitor (podmonitor.go).
	PodMonitorKind APIKind
}

// ObservedCluster is one cluster as it runs.
type ObservedCluster struct {
	// Spec is the spec the running objects were last applied from.
	Spec *cluster.Cluster
	// Primary is the ordinal of the current primary.
	Primary int
	// Instances are the running instances, by ordinal.
	Instances []ObservedInstance
	// ApprovedRevision is the revision whose primary update a human has
	// approved (primaryUpdateStrategy: supervised).
	ApprovedRevision string
	// Drift lists fields of the objects pgsync owns that differ from what
	// it applied ("Kind name: path"), found by a live observation.
	Drift []string
	// SyncRestricted: commits wait for synchronous standbys, and the
	// primary's newest published set lists some of the cluster's
	// instances (ObservedInstance.SyncListed); a switchover then targets
	// one of them.
	SyncRestricted bool
}

// ObservedInstance is one running instance.
type ObservedInstance struct {
	Ordinal int
	Image   string
	// NoTLS: the instance's pod was created before pgsync's TLS (its
	// template had no CA): it serves without TLS until it is re-created.
	NoTLS bool
	// TLSProblem is what the instance's manager finds wrong with
	// spec.certificates' Secrets of the user's ("" when nothing is).
	TLSProblem string
	// Revision identifies everything the instance's process was started
	// with that only a restart can change (revision.Restart).
	Revision string
	// Config identifies the reload-only configuration the instance has
	// loaded (revision.Config).
	Config string
	// VolumeSize is the size of the instance's PVC.
	VolumeSize cluster.Quantity
	// WALVolumeSize is the size of its WAL PVC (spec.walStorage), if any.
	WALVolumeSize cluster.Quantity
	Ready         bool
	// LagBytes is how far the instance's replay is behind the primary.
	LagBytes int64
	// SyncListed: the primary's synchronous_standby_names lists it (see
	// ObservedCluster.SyncRestricted).
	SyncListed bool
	// CA is the instance's report of the cluster's CA generations (nil
	// when unknown: no TLS, or no status read).
	CA *ObservedCA
}

// ObservedCA is what an instance reports of the cluster CA's generations
// in its pod (podcontract.CAStatus).
type ObservedCA struct {
	// Mounted: how many generations its pod mounts; Newest: the highest
	// present.
	Mounted, Newest int
	// RotationDue: the newest has less than a year left.
	RotationDue bool
}

// Options steer planning.
type Options struct {
	// Prune deletes clusters removed from Git instead of orphaning them.
	Prune bool
}

// Converged returns the observed state of a set of clusters as if each had
// fully converged to its spec, with the primary at ordinal 0: the offline
// plan's view of the base commit.
func Converged(specs []*cluster.Cluster) Observed {
	var o Observed
	for _, c := range specs {
		oc := ObservedCluster{Spec: c, Primary: 0}
		rev, conf := revision.Restart(c), revision.Config(c)
		for i := 0; i < c.Spec.Instances; i++ {
			in := ObservedInstance{Ordinal: i, Image: c.Spec.ImageName, Revision: rev,
				Config: conf, VolumeSize: c.Spec.Storage.Size, Ready: true}
			if c.Spec.WALStorage != nil {
				in.WALVolumeSize = c.Spec.WALStorage.Size
			}
			oc.Instances = append(oc.Instances, in)
		}
		o.Clusters = append(o.Clusters, oc)
	}
	return o
}
