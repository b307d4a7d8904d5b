package plan

import (
	"strings"

	"github.com/pgsync/pgsync/internal/cluster"
)

// WithImages records the image policy's verdicts in the plan: each
// cluster's (by key) and the instance image's. The desired clusters were
// pinned before planning (their imageName is ImageCheck.Pinned), so the
// steps already roll the verified digests; this says so.
func WithImages(p *Plan, checks map[cluster.Key]ImageCheck, instance *ImageCheck) {
	p.InstanceImage = instance
	for i := range p.Clusters {
		c := &p.Clusters[i]
		ic, ok := checks[cluster.Key{Namespace: c.Namespace, Name: c.Name}]
		if !ok {
			continue
		}
		c.Image = &ic
		for _, ch := range c.Changes {
			if ch.Path == "spec.imageName" && ch.Before != nil && ch.After != nil && strings.HasPrefix(*ch.After, *ch.Before+"@") {
				c.Warnings = append(c.Warnings, "the image policy pins spec.imageName to the digest it verified: every instance restarts once onto exactly that image (a pod started from a tag runs whatever the tag named when it was pulled)")
			}
		}
	}
}

// Verification is the check's outcome in a few words: "signed by K1, K2",
// "digest pinned" or "allowed as named" (a rule with no requirement).
func (ic ImageCheck) Verification() string {
	switch {
	case len(ic.SignedBy) > 0:
		s := "signed by "
		for i, k := range ic.SignedBy {
			if i > 0 {
				s += ", "
			}
			s += k
		}
		return s
	case ic.Digest != "":
		return "digest pinned, no signature required"
	}
	return "allowed as named, not pinned"
}
