package plan

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/pgsync/pgsync/internal/revision"
)

// Fingerprint identifies the observed state of a cluster as far as the
// plan depends on it: the applied spec's revisions, the primary, the
// approval, the drift, and each instance's revision, image, loaded
// configuration, volume and readiness. Replication lag is left out: it
// moves all the time and only orders the standbys. A saved plan records
// it, and apply refuses the plan when what runs no longer has it.
func Fingerprint(o *ObservedCluster) string {
	var b strings.Builder
	fmt.Fprintf(&b, "restart=%s\nconfig=%s\ninstances=%d\nprimary=%d\napproved=%s\n",
		revision.Restart(o.Spec), revision.Config(o.Spec), o.Spec.Spec.Instances, o.Primary, o.ApprovedRevision)
	for _, d := range o.Drift {
		fmt.Fprintf(&b, "drift=%q\n", d)
	}
	for _, in := range o.Instances {
		fmt.Fprintf(&b, "instance=%d revision=%q image=%q config=%q volume=%q ready=%v\n",
			in.Ordinal, in.Revision, in.Image, in.Config, in.VolumeSize, in.Ready)
	}
	sum := sha256.Sum256([]byte(b.String()))
	return "v1-" + hex.EncodeToString(sum[:8])
}
