package imagegate

import (
	"context"
	"fmt"

	"github.com/pgsync/pgsync/internal/cluster"
	"github.com/pgsync/pgsync/internal/imagepolicy"
	"github.com/pgsync/pgsync/internal/imagetrust"
	"github.com/pgsync/pgsync/internal/plan"
)

// Checker decides on one image (imagepolicy.Checker does, through the
// registry).
type Checker interface {
	Check(ctx context.Context, image string) (imagepolicy.Decision, error)
}

// Gate enforces one policy.
type Gate struct {
	Policy   *imagepolicy.Policy
	Registry imagetrust.Registry
	// NewChecker, when set, replaces the registry checker (tests of the
	// pure parts).
	NewChecker func() Checker
}

// Result is what one Enforce found.
type Result struct {
	// Clusters are the clusters given, in their order, each allowed one
	// with its imageName pinned (a copy when it changed). A refused one
	// stays as it was, so that no caller mistakes it for a cluster
	// removed from Git: callers act on Refused (nothing of it is
	// applied).
	Clusters []*cluster.Cluster
	// Checks are the verdicts on the allowed clusters' images.
	Checks map[cluster.Key]plan.ImageCheck
	// Refused are the refused clusters, each with its problem at
	// spec.imageName; Problems lists them all, sorted as given.
	Refused  map[cluster.Key]cluster.Diagnostic
	Problems cluster.Errors
	// Instance is the verdict on the instance image, InstanceImage what to
	// roll (pinned); InstanceRefused says why it may not be rolled. All
	// empty when no instance image was given.
	Instance        *plan.ImageCheck
	InstanceImage   string
	InstanceRefused error
}

// Enforce checks every cluster's image and the instance image (when not
// empty). An error is a failure to check at all (an unreadable key file),
// not a refusal.
func (g *Gate) Enforce(ctx context.Context, clusters []*cluster.Cluster, instanceImage string) (*Result, error) {
	var ch Checker
	if g.NewChecker != nil {
		ch = g.NewChecker()
	} else {
		// A new checker per call: nothing the registry said is kept.
		ch = &imagepolicy.Checker{Policy: g.Policy, Registry: g.Registry}
	}
	// One question per image within a call: clusters sharing an image
	// see one answer.
	seen := map[string]imagepolicy.Decision{}
	check := func(image string) (imagepolicy.Decision, error) {
		if d, ok := seen[image]; ok {
			return d, nil
		}
		d, err := ch.Check(ctx, image)
		if err != nil {
			return d, err
		}
		seen[image] = d
		return d, nil
	}
	r := &Result{Checks: map[cluster.Key]plan.ImageCheck{}, Refused: map[cluster.Key]cluster.Diagnostic{}}
	for _, c := range clusters {
		image := c.Spec.ImageName
		d, err := check(image)
		if err != nil {
			return nil, fmt.Errorf("%s: image policy: %w", c.Key(), err)
		}
		if !d.Allowed {
			p := refusal(c, d)
			r.Refused[c.Key()] = p
			r.Problems = append(r.Problems, p)
			r.Clusters = append(r.Clusters, c)
			continue
		}
		r.Checks[c.Key()] = checkOf(image, d)
		if d.Image != image {
			pinned := *c // a shallow copy: only imageName differs
			pinned.Spec.ImageName = d.Image
			c = &pinned
		}
		r.Clusters = append(r.Clusters, c)
	}
	if instanceImage != "" {
		d, err := check(instanceImage)
		if err != nil {
			return nil, fmt.Errorf("--instance-image %s: image policy: %w", instanceImage, err)
		}
		if !d.Allowed {
			r.InstanceRefused = fmt.Errorf("--instance-image %s: refused by the image policy: %s", instanceImage, d.Reason)
		} else {
			ic := checkOf(instanceImage, d)
			r.Instance, r.InstanceImage = &ic, d.Image
		}
	}
	return r, nil
}

func checkOf(image string, d imagepolicy.Decision) plan.ImageCheck {
	return plan.ImageCheck{Image: image, Pinned: d.Image, Digest: d.Digest, SignedBy: d.SignedBy, Reason: d.Reason}
}

// refusal is the problem of a refused image at the field that names it:
// spec.imageName when the file writes it, else spec.imageCatalogRef (the
// image came from a catalog), else the document (pgsync's default image).
func refusal(c *cluster.Cluster, d imagepolicy.Decision) cluster.Diagnostic {
	field := "spec.imageName"
	if _, ok := c.Positions[field]; !ok && c.Spec.ImageCatalogRef != nil {
		field = "spec.imageCatalogRef"
	}
	msg := fmt.Sprintf("refused by the image policy: %s", d.Reason)
	if c.ImageFrom != "" {
		msg = fmt.Sprintf("%s (from %s) refused by the image policy: %s", c.Spec.ImageName, c.ImageFrom, d.Reason)
	}
	return cluster.Diagnostic{Pos: c.Pos(field), Field: field, Message: msg}
}
