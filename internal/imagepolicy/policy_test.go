package imagepolicy

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

const good = `apiVersion: pgsync.io/v1
kind: ImagePolicy
rules:
- images: ["localhost:5000/pgsync"]
  requireDigest: true
  resolveTags: true
  keys: [build.pub]
  requireSBOM: true
- images: ["localhost:5000/*"]
  keys: [build.pub, old.pub]
- images: ["registry.internal/**"]
  requireDigest: true
- images: ["docker.io/library/postgres"]
- images: ["**"]
  deny: true
`

func mustParse(t *testing.T, y string) *Policy {
	t.Helper()
	p, err := Parse("policies/p.yaml", []byte(y))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestParse(t *testing.T) {
	p := mustParse(t, good)
	if len(p.Rules) != 5 || !p.Rules[0].RequireSBOM || p.Rules[1].Keys[1] != "old.pub" || !p.Rules[4].Deny || p.Rules[2].Line != 11 {
		t.Fatalf("parsed: %+v", p.Rules)
	}
	if got := p.KeyPath("build.pub"); got != "policies/build.pub" {
		t.Errorf("KeyPath = %s", got)
	}
	for _, tc := range []struct{ yaml, want string }{
		{"apiVersion: pgsync.io/v2\nkind: ImagePolicy\nrules: [{images: [a]}]\n", `p.yaml:1:13: apiVersion: "pgsync.io/v2": expected pgsync.io/v1`},
		{"apiVersion: pgsync.io/v1\nkind: Policy\nrules: [{images: [a]}]\n", `p.yaml:2:7: kind: "Policy": expected ImagePolicy`},
		{"apiVersion: pgsync.io/v1\nkind: ImagePolicy\n", `p.yaml:1:1: rules: required`},
		{"apiVersion: pgsync.io/v1\nkind: ImagePolicy\nrules: []\n", `p.yaml:3:8: rules: expected a non-empty list of rules`},
		{"apiVersion: pgsync.io/v1\nkind: ImagePolicy\nrulez: []\nrules: [{images: [a]}]\n", `p.yaml:3:1: rulez: unknown field`},
		{"apiVersion: pgsync.io/v1\nkind: ImagePolicy\nrules:\n- keys: [k.pub]\n", `p.yaml:4:3: rules[0].images: required`},
		{"apiVersion: pgsync.io/v1\nkind: ImagePolicy\nrules:\n- images: []\n", `p.yaml:4:11: rules[0].images: empty`},
		{"apiVersion: pgsync.io/v1\nkind: ImagePolicy\nrules:\n- images: [a]\n  requireDigest: yes please\n", `p.yaml:5:18: rules[0].requireDigest: expected true or false, got "yes please"`},
		{"apiVersion: pgsync.io/v1\nkind: ImagePolicy\nrules:\n- images: [a]\n  verify: true\n", `p.yaml:5:3: rules[0].verify: unknown field`},
		{"apiVersion: pgsync.io/v1\nkind: ImagePolicy\nrules:\n- images: [\"a/b:15\"]\n", `p.yaml:4:12: rules[0].images[0]: "a/b:15": a pattern names REGISTRY/REPOSITORY, without a tag or digest`},
		{"apiVersion: pgsync.io/v1\nkind: ImagePolicy\nrules:\n- images: [\"a/b@sha256:1\"]\n", `without a tag or digest`},
		{"apiVersion: pgsync.io/v1\nkind: ImagePolicy\nrules:\n- images: [\"a/[bc]\"]\n", `'[' cannot be in an image name`},
		{"apiVersion: pgsync.io/v1\nkind: ImagePolicy\nrules:\n- images: [a]\n  deny: true\n  keys: [k.pub]\n", `p.yaml:6:9: rules[0].keys: a deny rule refuses every image it matches`},
		{"apiVersion: pgsync.io/v1\nkind: ImagePolicy\nrules:\n- images: [a]\n  requireSBOM: true\n", `p.yaml:5:16: rules[0].requireSBOM: needs keys`},
		{"apiVersion: pgsync.io/v1\nkind: ImagePolicy\nrules:\n- images: [a]\n  keys: [\"\"]\n", `p.yaml:5:10: rules[0].keys[0]: expected a non-empty string`},
		{"- a\n", `p.yaml:1:1: (document): expected a mapping`},
	} {
		_, err := Parse("p.yaml", []byte(tc.yaml))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q:\n got %v\nwant %s", tc.yaml, err, tc.want)
		}
	}
	var es Errors
	_, err := Parse("p.yaml", []byte("apiVersion: x\nkind: y\nrules: []\n"))
	if !errors.As(err, &es) || len(es) != 3 {
		t.Errorf("every problem is reported: %v", err)
	}
}

func TestMatch(t *testing.T) {
	for _, tc := range []struct {
		pat, repo string
		want      bool
	}{
		{"localhost:5000/*", "localhost:5000/postgresql", true},
		{"localhost:5000/*", "localhost:5000/team/postgresql", false},
		{"localhost:5000/**", "localhost:5000/team/postgresql", true},
		{"**", "docker.io/library/postgres", true},
		{"ghcr.io/cloudnative-pg/postgresql", "ghcr.io/cloudnative-pg/postgresql", true},
		{"ghcr.io/cloudnative-pg/postgresql", "ghcr.io/cloudnative-pg/postgresql-extra", false},
		{"ghcr.io/*/postgresql", "ghcr.io/cloudnative-pg/postgresql", true},
		{"*.internal/pg", "registry.internal/pg", true},
		{"*.internal/pg", "evil.com/x.internal/pg", false},
		{"localhost.5000/*", "localhostX5000/pg", false}, // '.' is literal
	} {
		if got := matchPattern(tc.pat, tc.repo); got != tc.want {
			t.Errorf("matchPattern(%q, %q) = %v", tc.pat, tc.repo, got)
		}
	}
}

const d1 = "sha256:1111111111111111111111111111111111111111111111111111111111111111"

func TestDecide(t *testing.T) {
	p := mustParse(t, good)
	errNoSig := fmt.Errorf("no signature")
	for _, tc := range []struct {
		name, image string
		facts       Facts
		need        Need
		allowed     bool
		wantImage   string
		reason      string
	}{
		{name: "signed, resolved, with SBOM", image: "localhost:5000/pgsync:dev",
			need:    Need{Rule: 0, Resolve: true, Signature: true, SBOM: true},
			facts:   Facts{Digest: d1, SignedBy: []string{"build.pub"}, SBOMBy: []string{"build.pub"}},
			allowed: true, wantImage: "localhost:5000/pgsync:dev@" + d1,
			reason: "allowed by policies/p.yaml rule 1 (line 4): localhost:5000/pgsync@" + d1 + " signed by build.pub"},
		{name: "signed without SBOM", image: "localhost:5000/pgsync:dev",
			need:   Need{Rule: 0, Resolve: true, Signature: true, SBOM: true},
			facts:  Facts{Digest: d1, SignedBy: []string{"build.pub"}, SBOMErr: errors.New("no attestation")},
			reason: "rule 1 (line 4) requires an SBOM attestation signed by build.pub: no attestation"},
		{name: "unsigned", image: "localhost:5000/postgresql:15.20",
			need:   Need{Rule: 1, Resolve: true, Signature: true},
			facts:  Facts{Digest: d1, SignatureErr: errNoSig},
			reason: "rule 2 (line 9) requires a signature by build.pub or old.pub: localhost:5000/postgresql@" + d1 + " is not signed: no signature"},
		{name: "signed by a key of another rule", image: "localhost:5000/postgresql:15.20",
			need:   Need{Rule: 1, Resolve: true, Signature: true},
			facts:  Facts{Digest: d1, SignedBy: []string{"other.pub"}},
			reason: "is not signed"},
		{name: "signed by the second key, pinned already", image: "localhost:5000/postgresql:15.20@" + d1,
			need:    Need{Rule: 1, Signature: true},
			facts:   Facts{SignedBy: []string{"old.pub"}},
			allowed: true, wantImage: "localhost:5000/postgresql:15.20@" + d1, reason: "signed by old.pub"},
		{name: "unresolvable tag", image: "localhost:5000/postgresql:99",
			need:   Need{Rule: 1, Resolve: true, Signature: true},
			facts:  Facts{ResolveErr: errors.New("MANIFEST_UNKNOWN")},
			reason: "cannot resolve localhost:5000/postgresql:99 to a digest: MANIFEST_UNKNOWN"},
		{name: "digest required, tag only, no resolution", image: "registry.internal/team/pg:16.4",
			need:   Need{Rule: 2},
			reason: "rule 3 (line 11) requires a digest: pin registry.internal/team/pg:16.4 by digest (REPO:TAG@sha256:…) or let the rule resolve tags (resolveTags: true)"},
		{name: "digest required and given", image: "registry.internal/team/pg:16.4@" + d1,
			need: Need{Rule: 2}, allowed: true, wantImage: "registry.internal/team/pg:16.4@" + d1, reason: "allowed by policies/p.yaml rule 3 (line 11)"},
		{name: "no requirement: tag kept", image: "postgres:16.4",
			need: Need{Rule: 3}, allowed: true, wantImage: "postgres:16.4", reason: "(tag not resolved)"},
		{name: "denied", image: "quay.io/enterprisedb/postgresql:13.1",
			need: Need{Rule: 4}, reason: "policies/p.yaml rule 5 (line 14) denies quay.io/enterprisedb/postgresql"},
		{name: "unparsable", image: "UPPER/Case:1", need: Need{Rule: -1}, reason: `image "UPPER/Case:1"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, err := p.Needs(tc.image)
			if err == nil && n != tc.need {
				t.Errorf("Needs = %+v, want %+v", n, tc.need)
			}
			d := p.Decide(tc.image, tc.facts)
			if d.Allowed != tc.allowed || !strings.Contains(d.Reason, tc.reason) || (tc.allowed && d.Image != tc.wantImage) {
				t.Errorf("Decide = %+v\nwant allowed=%v image=%s reason ~ %q", d, tc.allowed, tc.wantImage, tc.reason)
			}
		})
	}
	noDeny := mustParse(t, "apiVersion: pgsync.io/v1\nkind: ImagePolicy\nrules:\n- images: [\"localhost:5000/*\"]\n")
	if d := noDeny.Decide("ghcr.io/x/pg:16", Facts{}); d.Allowed || d.Reason != "no rule of policies/p.yaml matches ghcr.io/x/pg" {
		t.Errorf("no rule: %+v", d)
	}
}
