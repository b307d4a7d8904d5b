package imagepolicy

import (
	"context"
	"fmt"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/pgsync/pgsync/internal/imagetrust"
)

// Need is what Decide needs to know about an image, per its rule.
type Need struct {
	// Rule is the index of the matching rule, -1 for none.
	Rule int
	// Resolve: the tag must be resolved to a digest.
	Resolve bool
	// Signature, SBOM: the signatures, the SBOM attestation of the digest
	// must be verified against the rule's keys.
	Signature, SBOM bool
}

// Facts are what the registry said about an image.
type Facts struct {
	// Digest is what the tag resolved to (when Need.Resolve).
	Digest     string
	ResolveErr error
	// SignedBy are the rule's keys (as written in the policy) that
	// verified a signature of the digest; SignatureErr says why none did.
	SignedBy     []string
	SignatureErr error
	SBOMBy       []string
	SBOMErr      error
}

// Decision is the policy's verdict on an image.
type Decision struct {
	Allowed bool
	// Image is what to roll: the imageName with the verified digest
	// (REPO:TAG@sha256:… — the tag kept, so the version stays readable),
	// or the imageName as it was when the rule asks for no digest.
	Image  string
	Digest string
	// Rule is the index of the rule that decided, -1 for none.
	Rule     int
	SignedBy []string
	// Reason says why, in a sentence that names the rule.
	Reason string
}

func (p *Policy) ruleName(i int) string {
	return fmt.Sprintf("%s rule %d (line %d)", p.File, i+1, p.Rules[i].Line)
}

// Needs returns what must be known about image to decide.
func (p *Policy) Needs(image string) (Need, error) {
	ref, err := name.ParseReference(image)
	if err != nil {
		return Need{Rule: -1}, fmt.Errorf("image %q: %w", image, err)
	}
	r, i := p.Match(ref)
	if r == nil || r.Deny {
		return Need{Rule: i}, nil
	}
	_, pinned := ref.(name.Digest)
	n := Need{Rule: i, Signature: len(r.Keys) > 0, SBOM: r.RequireSBOM}
	if !pinned {
		if r.RequireDigest && !r.ResolveTags {
			return Need{Rule: i}, nil // refused on the name alone
		}
		n.Resolve = r.ResolveTags || n.Signature || n.SBOM
	}
	return n, nil
}

// Decide is the policy's verdict on image given the facts Needs asked for.
// It does no I/O.
func (p *Policy) Decide(image string, f Facts) Decision {
	refuse := func(rule int, format string, args ...any) Decision {
		return Decision{Rule: rule, Image: image, Reason: fmt.Sprintf(format, args...)}
	}
	ref, err := name.ParseReference(image)
	if err != nil {
		return refuse(-1, "image %q: %v", image, err)
	}
	r, i := p.Match(ref)
	if r == nil {
		return refuse(-1, "no rule of %s matches %s", p.File, repository(ref))
	}
	rule := p.ruleName(i)
	if r.Deny {
		return refuse(i, "%s denies %s", rule, repository(ref))
	}
	digest := ""
	if d, ok := ref.(name.Digest); ok {
		digest = d.DigestStr()
	}
	if digest == "" {
		if r.RequireDigest && !r.ResolveTags {
			return refuse(i, "%s requires a digest: pin %s by digest (REPO:TAG@sha256:…) or let the rule resolve tags (resolveTags: true)", rule, image)
		}
		if r.ResolveTags || len(r.Keys) > 0 || r.RequireSBOM {
			if f.ResolveErr != nil || f.Digest == "" {
				return refuse(i, "%s: cannot resolve %s to a digest: %v", rule, image, f.ResolveErr)
			}
			digest = f.Digest
		}
	}
	d := Decision{Allowed: true, Rule: i, Image: image, Digest: digest}
	if digest != "" && !strings.Contains(image, "@") {
		d.Image = image + "@" + digest
	}
	if len(r.Keys) > 0 {
		signed := keysOf(r, f.SignedBy)
		if len(signed) == 0 {
			return refuse(i, "%s requires a signature by %s: %s is not signed: %v", rule, strings.Join(r.Keys, " or "), shortRef(ref, digest), f.SignatureErr)
		}
		d.SignedBy = signed
	}
	if r.RequireSBOM && len(keysOf(r, f.SBOMBy)) == 0 {
		return refuse(i, "%s requires an SBOM attestation signed by %s: %v", rule, strings.Join(r.Keys, " or "), f.SBOMErr)
	}
	switch {
	case len(d.SignedBy) > 0:
		d.Reason = fmt.Sprintf("allowed by %s: %s signed by %s", rule, shortRef(ref, digest), strings.Join(d.SignedBy, ", "))
	case digest != "":
		d.Reason = fmt.Sprintf("allowed by %s: %s", rule, shortRef(ref, digest))
	default:
		d.Reason = fmt.Sprintf("allowed by %s (tag not resolved)", rule)
	}
	return d
}

// keysOf keeps the keys the rule lists (facts about other keys prove
// nothing under this rule).
func keysOf(r *Rule, got []string) []string {
	var out []string
	for _, k := range got {
		for _, want := range r.Keys {
			if k == want {
				out = append(out, k)
			}
		}
	}
	return out
}

func shortRef(ref name.Reference, digest string) string {
	if digest == "" {
		return ref.String()
	}
	return ref.Context().String() + "@" + digest
}

// Checker gathers the facts through the registry and decides.
type Checker struct {
	Policy   *Policy
	Registry imagetrust.Registry
	keys     map[string]imagetrust.Key
}

// Check decides on image, asking the registry what Needs asks for. Key
// files are read on first use.
func (c *Checker) Check(ctx context.Context, image string) (Decision, error) {
	n, err := c.Policy.Needs(image)
	if err != nil {
		return c.Policy.Decide(image, Facts{}), nil
	}
	var f Facts
	ref, _ := name.ParseReference(image)
	var d name.Digest
	if dd, ok := ref.(name.Digest); ok {
		d = dd
	}
	if n.Resolve {
		d, f.ResolveErr = c.Registry.Resolve(ctx, ref)
		if f.ResolveErr == nil {
			f.Digest = d.DigestStr()
		}
	}
	if (n.Signature || n.SBOM) && d.DigestStr() != "" {
		r := &c.Policy.Rules[n.Rule]
		keys, err := c.loadKeys(r)
		if err != nil {
			return Decision{}, err
		}
		if n.Signature {
			sigs, err := c.Registry.Verify(ctx, d, keys)
			f.SignatureErr = err
			for _, s := range sigs {
				f.SignedBy = append(f.SignedBy, s.Key)
			}
		}
		if n.SBOM {
			sboms, err := c.Registry.VerifySBOM(ctx, d, keys)
			f.SBOMErr = err
			for _, s := range sboms {
				f.SBOMBy = append(f.SBOMBy, s.Key)
			}
		}
	}
	return c.Policy.Decide(image, f), nil
}

// loadKeys reads a rule's keys; each is named as the policy writes it.
func (c *Checker) loadKeys(r *Rule) ([]imagetrust.Key, error) {
	if c.keys == nil {
		c.keys = map[string]imagetrust.Key{}
	}
	var out []imagetrust.Key
	for _, k := range r.Keys {
		key, ok := c.keys[k]
		if !ok {
			var err error
			if key, err = imagetrust.LoadPublicKeyFile(c.Policy.KeyPath(k)); err != nil {
				return nil, fmt.Errorf("%s: key %s: %w", c.Policy.File, k, err)
			}
			key.Name = k
			c.keys[k] = key
		}
		out = append(out, key)
	}
	return out, nil
}
