package plan

import (
	"fmt"
	"time"

	"github.com/pgsync/pgsync/internal/cluster"
	"github.com/pgsync/pgsync/internal/window"
)

// WindowState is when a cluster's restarts and switchovers may start: its
// maintenance window (the Cluster file's, or the default one), as of At.
type WindowState struct {
	Schedule string
	// Open: a step may start now. NextStart and NextEnd are the next (or
	// current) opening.
	Open               bool
	NextStart, NextEnd time.Time
	At                 time.Time
}

// Restarts says whether s restarts an instance or moves the primary: the
// steps fleet waves and maintenance windows gate (creates, reloads and
// online resizes are not).
func (s Step) Restarts(desired *cluster.Cluster) bool {
	switch s.Action {
	case StepRestartInstance, StepSwitchover:
		return true
	case StepResizeVolume:
		return desired != nil && !*desired.Spec.Storage.ResizeInUseVolumes // the instance restarts
	case StepResizeWALVolume:
		return desired != nil && desired.Spec.WALStorage != nil && !*desired.Spec.WALStorage.ResizeInUseVolumes
	}
	return false
}

// WithWindows sets Window on each cluster plan with a step that restarts,
// whose Cluster file (or else defaultWindow) names a maintenance window,
// as of now. It reads no clock: now is passed in.
func WithWindows(p *Plan, desired []*cluster.Cluster, defaultWindow window.Schedule, now time.Time) {
	byKey := map[string]*cluster.Cluster{}
	for _, c := range desired {
		byKey[c.Key().String()] = c
	}
	for i := range p.Clusters {
		cp := &p.Clusters[i]
		d := byKey[cp.Namespace+"/"+cp.Name]
		restarts := false
		for _, s := range cp.Steps {
			restarts = restarts || s.Restarts(d)
		}
		if !restarts || d == nil {
			continue
		}
		schedule := defaultWindow
		if r, err := d.Rollout(); err == nil && !r.Window.IsZero() {
			schedule = r.Window
		}
		if schedule.IsZero() {
			continue
		}
		start, end := schedule.Next(now)
		cp.Window = &WindowState{Schedule: schedule.String(), Open: schedule.Open(now), NextStart: start, NextEnd: end, At: now}
	}
}

// String is the window in one line (text and Markdown plans, status).
func (w *WindowState) String() string {
	if w.Open {
		return fmt.Sprintf("maintenance window %s: open now, until %s", w.Schedule, w.NextEnd.Format("Mon 2006-01-02 15:04 MST"))
	}
	return fmt.Sprintf("maintenance window %s: closed; restarts and switchovers wait until it opens %s (in %s)",
		w.Schedule, w.NextStart.Format("Mon 2006-01-02 15:04 MST"), roughly(w.NextStart.Sub(w.At)))
}

// roughly is a duration to the minute: "2d 3h 4m", "45m", "under a minute".
func roughly(d time.Duration) string {
	if d < time.Minute {
		return "under a minute"
	}
	d = d.Round(time.Minute)
	days, hours, mins := int(d/(24*time.Hour)), int(d%(24*time.Hour)/time.Hour), int(d%time.Hour/time.Minute)
	out := ""
	if days > 0 {
		out += fmt.Sprintf("%dd ", days)
	}
	if days > 0 || hours > 0 {
		out += fmt.Sprintf("%dh ", hours)
	}
	return out + fmt.Sprintf("%dm", mins)
}
