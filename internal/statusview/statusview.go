// Package statusview is `pgsync status`: the document built from an
// observed fleet and its plan (per cluster the instances, role, readiness,
// image, timeline, replication lag, pending restart, the last applied
// commit, and what pgsync would do next), and its renderings as a table,
// a wide table, JSON and YAML. It is pure: it reads what observe and plan
// produced and writes to an io.Writer.
//
// It must not import `internal/apply`, `internal/gitsource` or
// `internal/instance/...` (client-go comes in only through observe's
// types; statusview itself makes no call).
package statusview

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/pgsync/pgsync/internal/observe"
	"github.com/pgsync/pgsync/internal/plan"
	pc "github.com/pgsync/pgsync/internal/podcontract"
)

// Document is the JSON and YAML form; fields are only ever added.
type Document struct {
	Clusters []Cluster `json:"clusters"`
}

// Cluster is one cluster's status.
type Cluster struct {
	Namespace string `json:"namespace"`
	Name      string `json:"name"`
	// Desired is spec.instances as last applied.
	Desired       int    `json:"desiredInstances"`
	Primary       string `json:"primary"`
	LeaseHolder   string `json:"leaseHolder"`
	TargetPrimary string `json:"targetPrimary"`
	// Commit is the Git commit last applied ("" when unknown).
	Commit string `json:"appliedCommit"`
	// Converged: the plan has no step. Next is its first step otherwise.
	Converged bool      `json:"converged"`
	Next      *NextStep `json:"next"`
	// Against says what the plan compared with: "applied spec" or a commit.
	Against  string   `json:"plannedAgainst"`
	Warnings []string `json:"warnings"`
	// Halted says why pgsync halted the rollout (the StatefulSet's
	// pgsync.io/halted annotation: a step ran out of time).
	Halted string `json:"halted,omitempty"`
	// Holding names the instance on the new spec that is not ready yet,
	// which holds every further step until it is (or a commit fixes the
	// spec); past the step timeout pgsync halts the rollout on it.
	Holding string `json:"holding,omitempty"`
	// Window is the maintenance window the cluster's next restarts and
	// switchovers wait for, when it has one.
	Window *Window `json:"maintenanceWindow,omitempty"`
	// LastFailover is the cluster's last automated failover, as the
	// instance that took over recorded it on the primary Lease
	// (pgsync.io/last-failover).
	LastFailover *pc.Failover `json:"lastFailover,omitempty"`
	Instances    []Instance   `json:"instances"`
}

// Window is a maintenance window as of the observation: open now (until
// NextEnd), or opening at NextStart.
type Window struct {
	Schedule  string    `json:"schedule"`
	Open      bool      `json:"open"`
	NextStart time.Time `json:"nextStart"`
	NextEnd   time.Time `json:"nextEnd"`
	line      string
}

// NextStep is the first planned step.
type NextStep struct {
	Action   string `json:"action"`
	Instance string `json:"instance,omitempty"`
	Reason   string `json:"reason"`
}

// Instance is one instance's status.
type Instance struct {
	Name           string   `json:"name"`
	Ordinal        int      `json:"ordinal"`
	Role           string   `json:"role"`
	Ready          bool     `json:"ready"`
	NotReady       string   `json:"notReadyReason,omitempty"`
	Image          string   `json:"image"`
	Revision       string   `json:"revision"`
	ConfigRevision string   `json:"configRevision"`
	Timeline       uint32   `json:"timeline"`
	LagBytes       int64    `json:"lagBytes"`
	ReceivedLSN    string   `json:"receivedLSN,omitempty"`
	ReplayedLSN    string   `json:"replayedLSN,omitempty"`
	CurrentLSN     string   `json:"currentLSN,omitempty"`
	PendingRestart []string `json:"pendingRestart"`
	Phase          string   `json:"phase"`
	Restarts       int32    `json:"restarts"`
	Volume         string   `json:"volume"`
	ResizePending  bool     `json:"resizePending"`
}

// Build makes the document from a fleet and the plan made from it.
// against names what the plan compared with.
func Build(f *observe.Fleet, p *plan.Plan, against string) Document {
	plans := map[string]plan.ClusterPlan{}
	if p != nil {
		for _, cp := range p.Clusters {
			plans[cp.Namespace+"/"+cp.Name] = cp
		}
	}
	doc := Document{Clusters: []Cluster{}}
	for _, c := range f.Clusters {
		k := c.Key()
		names := c.Observed.Spec.Metadata.Name
		out := Cluster{Namespace: k.Namespace, Name: k.Name, Desired: c.Observed.Spec.Spec.Instances,
			Primary: fmt.Sprintf("%s-%d", names, c.Observed.Primary), LeaseHolder: c.LeaseHolder,
			TargetPrimary: c.TargetPrimary, Commit: c.Commit, Against: against,
			Warnings: []string{}, Instances: []Instance{}}
		if c.Lease != nil {
			if f, ok := pc.ParseFailover(c.Lease.Annotations[pc.AnnLastFailover]); ok {
				out.LastFailover = &f
			}
		}
		if cp, ok := plans[k.String()]; ok {
			out.Warnings = append(out.Warnings, cp.Warnings...)
			if cp.Halted != "" {
				out.Holding = cp.Halted
				out.Halted = haltedWhy(c)
			}
			if w := cp.Window; w != nil {
				out.Window = &Window{Schedule: w.Schedule, Open: w.Open, NextStart: w.NextStart, NextEnd: w.NextEnd, line: w.String()}
			}
			if len(cp.Steps) == 0 {
				out.Converged = cp.Halted == "" && (cp.Action == plan.ActionNoOp || cp.Action == plan.ActionUpdate)
			} else {
				s := cp.Steps[0]
				out.Next = &NextStep{Action: string(s.Action), Instance: s.Instance, Reason: s.Reason}
			}
		}
		for _, in := range c.Instances {
			si := Instance{Name: in.Name, Ordinal: in.Ordinal, Ready: in.Ready, NotReady: in.NotReady,
				Image: in.Image, Revision: in.Revision, LagBytes: in.LagBytes, PendingRestart: []string{},
				Phase: string(in.Phase), Restarts: in.Restarts, Volume: string(in.Capacity), ResizePending: in.ResizePending}
			if !in.PodExists {
				si.Phase = "Missing"
			}
			si.Role = "unknown"
			if st := in.Status; st != nil {
				si.Role, si.ConfigRevision, si.Timeline = st.Role, st.ConfigRevision, st.Timeline
				si.ReceivedLSN, si.ReplayedLSN, si.CurrentLSN = st.ReceivedLSN, st.ReplayedLSN, st.CurrentLSN
				si.PendingRestart = append(si.PendingRestart, st.PendingRestart...)
			}
			out.Instances = append(out.Instances, si)
		}
		doc.Clusters = append(doc.Clusters, out)
	}
	return doc
}

// Format is a rendering of the document.
type Format string

// The formats of -o.
const (
	Table Format = ""
	Wide  Format = "wide"
	JSON  Format = "json"
	YAML  Format = "yaml"
)

// ParseFormat checks an -o value.
func ParseFormat(s string) (Format, error) {
	switch f := Format(s); f {
	case Table, Wide, JSON, YAML:
		return f, nil
	}
	return "", fmt.Errorf("-o %q: allowed: wide, json, yaml (default: a table)", s)
}

// Render writes doc in format f.
func Render(w io.Writer, doc Document, f Format) error {
	switch f {
	case JSON:
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(doc)
	case YAML:
		raw, err := yaml.Marshal(doc)
		if err != nil {
			return err
		}
		_, err = w.Write(raw)
		return err
	}
	return renderTable(w, doc, f == Wide)
}

func renderTable(w io.Writer, doc Document, wide bool) error {
	if len(doc.Clusters) == 0 {
		_, err := fmt.Fprintln(w, "No clusters managed by pgsync found.")
		return err
	}
	var b strings.Builder
	for i, c := range doc.Clusters {
		if i > 0 {
			b.WriteString("\n")
		}
		commit := "unknown"
		if c.Commit != "" {
			commit = short(c.Commit)
		}
		fmt.Fprintf(&b, "Cluster %s/%s: %s, primary %s, applied from %s\n", c.Namespace, c.Name, instances(c.Desired), c.Primary, commit)
		switch {
		case c.Halted != "":
			fmt.Fprintf(&b, "Next: nothing — HALTED: %s (a commit that fixes the spec resumes)\n", c.Halted)
		case c.Holding != "":
			fmt.Fprintf(&b, "Next: waiting — %s runs the new spec and is not ready yet; nothing further until it is (past the step timeout pgsync halts the rollout)\n", c.Holding)
		case c.Next != nil:
			next := c.Next.Action
			if c.Next.Instance != "" {
				next += " " + c.Next.Instance
			}
			fmt.Fprintf(&b, "Next: %s — %s (against %s)\n", next, c.Next.Reason, c.Against)
		case c.Converged:
			fmt.Fprintf(&b, "Next: converged (against %s)\n", c.Against)
		default:
			fmt.Fprintf(&b, "Next: nothing (against %s)\n", c.Against)
		}
		if c.Window != nil && c.Window.line != "" {
			fmt.Fprintf(&b, "Window: %s\n", c.Window.line)
		}
		if f := c.LastFailover; f != nil {
			fmt.Fprintf(&b, "Last failover: %s\n", failoverLine(*f))
		}
		for _, warn := range c.Warnings {
			fmt.Fprintf(&b, "Warning: %s\n", warn)
		}
		tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
		header := "INSTANCE\tROLE\tREADY\tIMAGE\tTIMELINE\tLAG\tPENDING RESTART"
		if wide {
			header += "\tPHASE\tRESTARTS\tREVISION\tCONFIG\tREPLAYED LSN\tVOLUME\tNOT READY"
		}
		fmt.Fprintln(tw, header)
		for _, in := range c.Instances {
			tl := "-"
			if in.Timeline > 0 {
				tl = fmt.Sprint(in.Timeline)
			}
			pending := "-"
			if len(in.PendingRestart) > 0 {
				pending = strings.Join(in.PendingRestart, ",")
			}
			line := fmt.Sprintf("%s\t%s\t%s\t%s\t%s\t%s\t%s", in.Name, in.Role, yesNo(in.Ready), orDash(in.Image), tl, bytes(in.LagBytes), pending)
			if wide {
				vol := orDash(in.Volume)
				if in.ResizePending {
					vol += " (resizing)"
				}
				line += fmt.Sprintf("\t%s\t%d\t%s\t%s\t%s\t%s\t%s", orDash(in.Phase), in.Restarts, orDash(in.Revision),
					orDash(in.ConfigRevision), orDash(in.ReplayedLSN), vol, orDash(in.NotReady))
			}
			fmt.Fprintln(tw, line)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func instances(n int) string {
	if n == 1 {
		return "1 instance"
	}
	return fmt.Sprintf("%d instances", n)
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}

// bytes renders a lag in bytes, binary units above 1 KiB.
func bytes(n int64) string {
	switch {
	case n < 1024:
		return fmt.Sprintf("%d B", n)
	case n < 1<<20:
		return fmt.Sprintf("%.1f KiB", float64(n)/1024)
	case n < 1<<30:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
}

func haltedWhy(c observe.Cluster) string {
	if c.StatefulSet == nil {
		return ""
	}
	return c.StatefulSet.Annotations[pc.AnnHalted]
}

// failoverLine says who took over from whom, when, and what may be lost.
func failoverLine(f pc.Failover) string {
	line := fmt.Sprintf("%s → %s at %s", f.From, f.To, f.At.UTC().Format("2006-01-02 15:04:05 UTC"))
	if f.Timeline > 0 {
		line += fmt.Sprintf(" (timeline %d)", f.Timeline)
	}
	switch {
	case f.PromotedLSN == "":
		line += "; promotion not recorded yet"
	case f.FromLSN == "":
		line += fmt.Sprintf("; promoted at %s, the old primary had published no LSN (lost range unknown until it rejoins)", f.PromotedLSN)
	default:
		line += fmt.Sprintf("; lost at least %d bytes of WAL (old primary's last published %s, promoted at %s; the exact range is in its log when it rejoins)",
			f.LostBytesAtLeast, f.FromLSN, f.PromotedLSN)
	}
	return line
}
