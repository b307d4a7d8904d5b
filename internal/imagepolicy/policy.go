// Package imagepolicy decides whether an image may be rolled out: a policy
// file's rules, matched by image name, require a digest, allow tags to be
// resolved to digests, require a signature by one of a set of keys and an
// SBOM attestation. Deciding is pure (Decide, on facts gathered before);
// Check gathers the facts through the registry (internal/imagetrust) and
// decides. plan, apply and run enforce it through internal/imagegate
// (--image-policy, docs/supply-chain.md).
//
// It must not import `internal/plan`, `internal/apply`, `internal/daemon/...`, `k8s.io/client-go/...` or `github.com/go-git/...`.
package imagepolicy

import (
	"bytes"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
	"gopkg.in/yaml.v3"
)

// Policy is a parsed policy file.
type Policy struct {
	// File is the path it was read from (keys are relative to its
	// directory).
	File  string
	Rules []Rule
}

// Rule is one rule; the first whose Images pattern matches applies.
type Rule struct {
	// Line is where the rule starts in the file, for messages.
	Line int
	// Images are patterns on REGISTRY/REPOSITORY (no tag, no digest):
	// '*' matches within one path element, '**' across them; docker.io
	// names are written docker.io/library/postgres.
	Images []string
	Deny   bool
	// RequireDigest refuses an imageName without a digest unless
	// ResolveTags is on.
	RequireDigest bool
	// ResolveTags resolves a tag to the digest it names now, which is then
	// what is verified and rolled.
	ResolveTags bool
	// Keys are public key files (relative to the policy file): a signature
	// by one of them is required. Empty: no signature is required.
	Keys []string
	// RequireSBOM requires an SPDX attestation signed by one of Keys.
	RequireSBOM bool
}

// Error is a problem of a policy file, at a line and column.
type Error struct {
	File         string
	Line, Column int
	Field        string
	Message      string
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s:%d:%d: %s: %s", e.File, e.Line, e.Column, e.Field, e.Message)
}

// Errors are all the problems of a policy file.
type Errors []*Error

func (es Errors) Error() string {
	var b strings.Builder
	for i, e := range es {
		if i > 0 {
			b.WriteByte('\n')
		}
		b.WriteString(e.Error())
	}
	return b.String()
}

// Parse reads a policy file strictly: unknown fields, wrong types, an empty
// rule list, a rule without images, a bad pattern, requireSBOM without
// keys and keys on a deny rule are errors at their line.
func Parse(file string, data []byte) (*Policy, error) {
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	var errs Errors
	bad := func(n *yaml.Node, field, format string, args ...any) {
		errs = append(errs, &Error{File: file, Line: n.Line, Column: n.Column, Field: field, Message: fmt.Sprintf(format, args...)})
	}
	p := &Policy{File: file}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		bad(root, "(document)", "expected a mapping with apiVersion, kind and rules")
		return nil, errs
	}
	var rulesNode *yaml.Node
	seen := map[string]bool{}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		seen[k.Value] = true
		switch k.Value {
		case "apiVersion":
			if v.Value != "pgsync.io/v1" {
				bad(v, "apiVersion", "%q: expected pgsync.io/v1", v.Value)
			}
		case "kind":
			if v.Value != "ImagePolicy" {
				bad(v, "kind", "%q: expected ImagePolicy", v.Value)
			}
		case "rules":
			rulesNode = v
		default:
			bad(k, k.Value, "unknown field (allowed: apiVersion, kind, rules)")
		}
	}
	for _, f := range []string{"apiVersion", "kind", "rules"} {
		if !seen[f] {
			bad(root, f, "required")
		}
	}
	if rulesNode != nil {
		if rulesNode.Kind != yaml.SequenceNode || len(rulesNode.Content) == 0 {
			bad(rulesNode, "rules", "expected a non-empty list of rules")
		} else {
			for i, rn := range rulesNode.Content {
				p.Rules = append(p.Rules, parseRule(rn, fmt.Sprintf("rules[%d]", i), bad))
			}
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return p, nil
}

func parseRule(n *yaml.Node, field string, bad func(*yaml.Node, string, string, ...any)) Rule {
	r := Rule{Line: n.Line}
	if n.Kind != yaml.MappingNode {
		bad(n, field, "expected a mapping")
		return r
	}
	boolean := func(v *yaml.Node, f string, dst *bool) {
		if v.Kind != yaml.ScalarNode || v.Tag != "!!bool" {
			bad(v, f, "expected true or false, got %q", v.Value)
			return
		}
		*dst = v.Value == "true"
	}
	strs := func(v *yaml.Node, f string) []string {
		if v.Kind != yaml.SequenceNode {
			bad(v, f, "expected a list of strings")
			return nil
		}
		var out []string
		for j, s := range v.Content {
			if s.Kind != yaml.ScalarNode || s.Tag != "!!str" || s.Value == "" {
				bad(s, fmt.Sprintf("%s[%d]", f, j), "expected a non-empty string")
				continue
			}
			out = append(out, s.Value)
		}
		return out
	}
	var imagesNode, keysNode, sbomNode *yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		f := field + "." + k.Value
		switch k.Value {
		case "images":
			imagesNode = v
			r.Images = strs(v, f)
			for j, pat := range r.Images {
				if err := checkPattern(pat); err != nil {
					bad(v.Content[j], fmt.Sprintf("%s[%d]", f, j), "%v", err)
				}
			}
		case "deny":
			boolean(v, f, &r.Deny)
		case "requireDigest":
			boolean(v, f, &r.RequireDigest)
		case "resolveTags":
			boolean(v, f, &r.ResolveTags)
		case "keys":
			keysNode = v
			r.Keys = strs(v, f)
		case "requireSBOM":
			sbomNode = v
			boolean(v, f, &r.RequireSBOM)
		default:
			bad(k, f, "unknown field (allowed: images, deny, requireDigest, resolveTags, keys, requireSBOM)")
		}
	}
	switch {
	case imagesNode == nil:
		bad(n, field+".images", "required: the image patterns the rule applies to")
	case len(r.Images) == 0 && imagesNode.Kind == yaml.SequenceNode:
		bad(imagesNode, field+".images", "empty: the rule would match nothing")
	}
	if r.Deny && keysNode != nil {
		bad(keysNode, field+".keys", "a deny rule refuses every image it matches: keys mean nothing here")
	}
	if r.RequireSBOM && len(r.Keys) == 0 && sbomNode != nil {
		bad(sbomNode, field+".requireSBOM", "needs keys: the SBOM attestation must be signed by one of them")
	}
	return r
}

// checkPattern refuses patterns that carry a tag or digest, or characters
// other than those of image names and the wildcards * and **.
func checkPattern(p string) error {
	if strings.Contains(p, "@") || strings.Contains(p[strings.LastIndexByte(p, '/')+1:], ":") {
		return fmt.Errorf("%q: a pattern names REGISTRY/REPOSITORY, without a tag or digest", p)
	}
	for _, c := range p {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.ContainsRune("._-/:*", c)) {
			return fmt.Errorf("%q: %q cannot be in an image name (lower-case letters, digits, . _ - / : and the wildcards * and **)", p, c)
		}
	}
	if strings.Contains(p, "***") {
		return fmt.Errorf("%q: *** (use * within a path element, ** across them)", p)
	}
	return nil
}

// globRegexp turns a pattern into an anchored regular expression: '**'
// any characters, '*' any within a path element.
func globRegexp(pat string) *regexp.Regexp {
	var b strings.Builder
	b.WriteString("^")
	for i := 0; i < len(pat); i++ {
		switch {
		case strings.HasPrefix(pat[i:], "**"):
			b.WriteString(".*")
			i++
		case pat[i] == '*':
			b.WriteString("[^/]*")
		default:
			b.WriteString(regexp.QuoteMeta(pat[i : i+1]))
		}
	}
	b.WriteString("$")
	return regexp.MustCompile(b.String())
}

// matchPattern reports whether REGISTRY/REPO s matches pat.
func matchPattern(pat, s string) bool { return globRegexp(pat).MatchString(s) }

// repository is the REGISTRY/REPOSITORY patterns match, with Docker Hub
// written docker.io.
func repository(ref name.Reference) string {
	reg := ref.Context().RegistryStr()
	if reg == name.DefaultRegistry {
		reg = "docker.io"
	}
	return reg + "/" + ref.Context().RepositoryStr()
}

// Match returns the first rule matching image and its index, or -1.
func (p *Policy) Match(ref name.Reference) (*Rule, int) {
	repo := repository(ref)
	for i := range p.Rules {
		for _, pat := range p.Rules[i].Images {
			if matchPattern(pat, repo) {
				return &p.Rules[i], i
			}
		}
	}
	return nil, -1
}

// KeyPath is a rule's key file resolved against the policy's directory.
func (p *Policy) KeyPath(k string) string {
	if filepath.IsAbs(k) {
		return k
	}
	return filepath.Join(filepath.Dir(p.File), k)
}
