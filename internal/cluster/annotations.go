package cluster

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

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
	pc.AnnStepTimeout: func(v string, r *Rollout) error {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			return fmt.Errorf("invalid value %q: want a duration greater than zero, such as 10m or 1h30m", v)
		}
		r.StepTimeout = d
		return nil
	},
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
