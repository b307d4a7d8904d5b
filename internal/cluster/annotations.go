package cluster

import (
	"errors"
	"fmt"
	"net/netip"
	"strconv"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/selection"

	pc "github.com/pgsync/pgsync/internal/podcontract"
	"github.com/pgsync/pgsync/internal/window"
)

// Rollout is what a Cluster file's pgsync.io annotations say about rolling
// the cluster out, and the primary Lease's duration (docs/annotations.md).
// The zero value is a file with none of them.
type Rollout struct {
	// Window is when steps that restart or switch over may start; zero
	// when the file names none (the daemon's default, if any, applies).
	Window window.Schedule
	// Suspend stops every step of the cluster.
	Suspend bool
	// Wave orders rollouts across the fleet, lower waves first; 0 when not
	// set.
	Wave int
	// StepTimeout overrides apply's step timeout; 0 when not set.
	StepTimeout time.Duration
	// AdoptSecrets: a new cluster keeps credential Secrets that exist
	// already instead of refusing them (pgsync.io/adopt-secrets).
	AdoptSecrets bool
	// LeaseDuration is the primary Lease's duration; 0 when not set (the
	// instance manager's default).
	LeaseDuration time.Duration
	// Clients is who the NetworkPolicy lets connect to 5432 besides the
	// cluster's own pods (pgsync.io/clients): pc.ClientsNamespace (also
	// when not set), pc.ClientsCluster, or a label selector of the
	// namespace's pods, as written.
	Clients string
	// StatusFrom are CIDRs the NetworkPolicy lets reach the status port
	// besides the cluster's pods and pgsync's namespace
	// (pgsync.io/status-from), in their canonical form.
	StatusFrom []string
}

// Bounds of pgsync.io/lease-duration: the manager needs 3 s at least (it
// renews every third and fences at three quarters); beyond 5 m a dead
// primary would leave the cluster without writes for longer than any
// failover is worth waiting for.
const (
	MinLeaseDuration = 3 * time.Second
	MaxLeaseDuration = 5 * time.Minute
)

// rolloutAnnotations are the pgsync.io annotations a Cluster file may
// carry, each with the reading of its value; an error says what is allowed.
var rolloutAnnotations = map[string]func(value string, r *Rollout) error{
	pc.AnnMaintenanceWindow: func(v string, r *Rollout) error {
		s, err := window.Parse(v)
		r.Window = s
		return err
	},
	pc.AnnSuspend: func(v string, r *Rollout) error {
		switch v {
		case "true":
			r.Suspend = true
		case "false":
			r.Suspend = false
		default:
			return fmt.Errorf(`invalid value %q (allowed: "true", "false")`, v)
		}
		return nil
	},
	pc.AnnAdoptSecrets: func(v string, r *Rollout) error {
		switch v {
		case "true":
			r.AdoptSecrets = true
		case "false":
			r.AdoptSecrets = false
		default:
			return fmt.Errorf(`invalid value %q (allowed: "true", "false")`, v)
		}
		return nil
	},
	pc.AnnWave: func(v string, r *Rollout) error {
		// Digits only: "+1", "-0" and "1e3" are typos more likely than
		// intents.
		wave, err := strconv.ParseInt(v, 10, 32)
		if err != nil || strings.TrimLeft(v, "0123456789") != "" {
			return fmt.Errorf("invalid value %q: want a non-negative integer such as 0, 1 or 2 (the rollout order: lower waves roll first; 0 when not set)", v)
		}
		r.Wave = int(wave)
		return nil
	},
	pc.AnnLeaseDuration: func(v string, r *Rollout) error {
		d, err := time.ParseDuration(v)
		if err != nil || d < MinLeaseDuration || d > MaxLeaseDuration || d%time.Second != 0 {
			return fmt.Errorf("invalid value %q: want whole seconds from %s to %s, such as 8s or 30s (the primary Lease's duration; 15s when not set)", v, MinLeaseDuration, MaxLeaseDuration)
		}
		r.LeaseDuration = d
		return nil
	},
	pc.AnnClients: func(v string, r *Rollout) error {
		if v == pc.ClientsNamespace || v == pc.ClientsCluster {
			r.Clients = v
			return nil
		}
		if _, err := ClientSelector(v); err != nil {
			return fmt.Errorf("invalid value %q: %v (allowed: %q, the default: every pod of the namespace; %q: only the cluster's own pods; or a label selector of the namespace's pods such as app=shop or app in (shop,admin))",
				v, err, pc.ClientsNamespace, pc.ClientsCluster)
		}
		r.Clients = v
		return nil
	},
	pc.AnnStatusFrom: func(v string, r *Rollout) error {
		cidrs, err := parseCIDRs(v)
		if err != nil {
			return fmt.Errorf("invalid value %q: %v (allowed: comma-separated CIDRs such as 10.0.0.0/24 or 192.0.2.10/32)", v, err)
		}
		r.StatusFrom = cidrs
		return nil
	},
	pc.AnnStepTimeout: func(v string, r *Rollout) error {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return fmt.Errorf("invalid value %q: want a duration greater than zero, such as 10m or 1h30m", v)
		}
		r.StepTimeout = d
		return nil
	},
}

// ClientSelector is the NetworkPolicy pod selector of a pgsync.io/clients
// label selector: each requirement compares values (=, ==, in — one value
// goes to matchLabels; !=, notin) or asks for a label's absence (!key). A
// bare key is refused: "namspace" or "clusters" would otherwise be a valid
// selector of pods carrying such a label, and a typo would silently let
// no application in; so are gt and lt, which a NetworkPolicy cannot say.
func ClientSelector(v string) (*metav1.LabelSelector, error) {
	if strings.TrimSpace(v) == "" {
		return nil, errors.New("empty")
	}
	sel, err := labels.Parse(v)
	if err != nil {
		return nil, err
	}
	reqs, _ := sel.Requirements()
	out := &metav1.LabelSelector{}
	for _, r := range reqs {
		var op metav1.LabelSelectorOperator
		switch r.Operator() {
		case selection.Equals, selection.DoubleEquals, selection.In:
			if vals := r.Values().List(); len(vals) == 1 && r.Operator() != selection.In {
				if out.MatchLabels == nil {
					out.MatchLabels = map[string]string{}
				}
				out.MatchLabels[r.Key()] = vals[0]
				continue
			}
			op = metav1.LabelSelectorOpIn
		case selection.NotEquals, selection.NotIn:
			op = metav1.LabelSelectorOpNotIn
		case selection.DoesNotExist:
			op = metav1.LabelSelectorOpDoesNotExist
		case selection.Exists:
			return nil, fmt.Errorf("%q alone selects every pod that has the label: write %s=VALUE", r.Key(), r.Key())
		default:
			return nil, fmt.Errorf("%q: a NetworkPolicy cannot compare label values with %s", r.Key(), r.Operator())
		}
		out.MatchExpressions = append(out.MatchExpressions, metav1.LabelSelectorRequirement{
			Key: r.Key(), Operator: op, Values: r.Values().List()})
	}
	return out, nil
}

// parseCIDRs reads comma-separated CIDRs, each with the address its
// prefix starts at (a NetworkPolicy's ipBlock refuses host bits).
func parseCIDRs(v string) ([]string, error) {
	var out []string
	for _, f := range strings.Split(v, ",") {
		f = strings.TrimSpace(f)
		p, err := netip.ParsePrefix(f)
		if err != nil {
			return nil, fmt.Errorf("%q is not a CIDR", f)
		}
		if p.Masked() != p {
			return nil, fmt.Errorf("%q has host bits set (the prefix starts at %s)", f, p.Masked())
		}
		out = append(out, p.String())
	}
	return out, nil
}

// Rollout reads the cluster's pgsync.io annotations. Load has checked
// them, so for a cluster it returned this fails only if they were changed
// since.
func (c *Cluster) Rollout() (Rollout, error) {
	r, problems := readRollout(c.Metadata.Annotations)
	var errs []error
	for _, p := range problems {
		errs = append(errs, fmt.Errorf("%s: %s", annotationField(p.key), p.message))
	}
	return r, errors.Join(errs...)
}

type annotationProblem struct{ key, message string }

// readRollout reads every pgsync.io annotation of ann, in name order. A
// name that differs from a known one only in case counts as unknown: the
// API server would keep it as a different annotation.
func readRollout(ann map[string]string) (Rollout, []annotationProblem) {
	var (
		r        Rollout
		problems []annotationProblem
	)
	for _, key := range sortedKeys(ann) {
		if !strings.HasPrefix(strings.ToLower(key), pc.AnnPrefix) {
			continue
		}
		read, known := rolloutAnnotations[key]
		if !known {
			problems = append(problems, annotationProblem{key, fmt.Sprintf("unknown pgsync annotation (allowed in a Cluster file: %s; see docs/annotations.md)",
				strings.Join(sortedKeys(rolloutAnnotations), ", "))})
			continue
		}
		if err := read(ann[key], &r); err != nil {
			problems = append(problems, annotationProblem{key, err.Error()})
		}
	}
	return r, problems
}

// validateAnnotations returns a diagnostic, at the annotation's value, for
// every pgsync.io annotation that is unknown or holds an invalid value.
func validateAnnotations(c *Cluster) []Diagnostic {
	_, problems := readRollout(c.Metadata.Annotations)
	var out []Diagnostic
	for _, p := range problems {
		out = append(out, Diagnostic{Pos: c.Pos("metadata.annotations." + p.key), Field: annotationField(p.key), Message: p.message})
	}
	return out
}

// annotationField names an annotation's field in brackets: the name holds
// dots and a slash.
func annotationField(key string) string { return "metadata.annotations[" + key + "]" }
