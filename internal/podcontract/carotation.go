package podcontract

import (
	"strconv"
	"time"
)

// The CA's rotation (docs/security.md): a cluster's CA generations are the
// Secrets NAME-ca (1), NAME-ca-2, … NAME-ca-CAGenerations, created once
// each, a year before the one before expires. The pod mounts them all in
// one projected volume, the later ones optional, so a new generation
// reaches running pods without a restart and pgsync needs no right to
// change a Secret, only to create one.
const (
	// CAGenerations is how many generations a pod template mounts (ten
	// years each: four last thirty years and more).
	CAGenerations = 4
	// EnvCAGenerations tells the manager how many generations its pod
	// mounts; pgsync reads it back from the pod to find pods created
	// before rotation, which see generation 1 alone.
	EnvCAGenerations = "PGSYNC_CA_GENERATIONS"
	// AnnCAGeneration on the NAME-ca ConfigMap is the newest generation
	// created; the ConfigMap's CACertKey holds every unexpired
	// generation's certificate.
	AnnCAGeneration = "pgsync.io/ca-generation"
)

// CASecretOf is generation gen's Secret.
func (n Names) CASecretOf(gen int) string {
	if gen <= 1 {
		return n.CASecret()
	}
	return n.CASecret() + "-" + strconv.Itoa(gen)
}

// CAGenerationDir is where generation gen's two keys are, relative to
// CADir: generation 1 at its root (as pods from before rotation have it),
// the others in a directory each.
func CAGenerationDir(gen int) string {
	if gen <= 1 {
		return ""
	}
	return "gen" + strconv.Itoa(gen)
}

// CAStatus is what a manager reports of the CA generations in its pod:
// what pgsync's planner rotates by (it never reads the Secrets).
type CAStatus struct {
	// Mounted is how many generations the pod mounts (EnvCAGenerations;
	// 1 for a pod from before rotation).
	Mounted int `json:"mounted"`
	// Newest is the highest generation present in the volume, Issuer the
	// one the instance's certificates are issued from.
	Newest int `json:"newest"`
	Issuer int `json:"issuer"`
	// Expires is when the newest generation expires.
	Expires time.Time `json:"expires"`
	// RotationDue: the newest generation has less than a year left
	// (tlscert.RotationDue): pgsync creates the next.
	RotationDue bool `json:"rotationDue,omitempty"`
}
