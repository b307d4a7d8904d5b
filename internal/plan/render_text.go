package plan

import (
	"fmt"
	"io"
	"strings"
)

// TextOptions steer the human-readable rendering.
type TextOptions struct {
	// Color adds ANSI colours; the CLI sets it only on a terminal and
	// never when NO_COLOR is set.
	Color bool
}

const (
	ansiReset  = "\x1b[0m"
	ansiBold   = "\x1b[1m"
	ansiGreen  = "\x1b[32m"
	ansiYellow = "\x1b[33m"
	ansiRed    = "\x1b[31m"
	ansiCyan   = "\x1b[36m"
)

// symbols mark cluster actions, as terraform plan does.
var symbols = map[Action]string{
	ActionCreate: "+", ActionUpdate: "~", ActionDelete: "-", ActionOrphan: "?", ActionNoOp: "=",
}

var actionColors = map[Action]string{
	ActionCreate: ansiGreen, ActionUpdate: ansiYellow, ActionDelete: ansiRed, ActionOrphan: ansiCyan,
}

// RenderText writes the plan for a terminal, like `terraform plan`: per
// changed cluster a header, its changes as before → after, numbered steps
// with reasons and downtime warnings; then a summary line. Unchanged
// clusters only count in the summary.
func RenderText(w io.Writer, p *Plan, opts TextOptions) error {
	paint := func(color, s string) string {
		if !opts.Color || color == "" {
			return s
		}
		return color + s + ansiReset
	}
	var b strings.Builder
	switch {
	case p.Mode == ModeLive:
		fmt.Fprintf(&b, "Planning %s against the live clusters.\n\n", short(p.Head))
	case p.Base != "":
		fmt.Fprintf(&b, "Comparing %s (base) with %s (head).\n\n", short(p.Base), short(p.Head))
	case p.Head != "":
		fmt.Fprintf(&b, "Planning %s against an empty Kubernetes (offline).\n\n", short(p.Head))
	}
	if ic := p.InstanceImage; ic != nil {
		fmt.Fprintf(&b, "Instance image (the pgsync binary in every pod): %s\n    %s: %s\n\n", ic.Pinned, ic.Verification(), ic.Reason)
	}
	for _, c := range p.Clusters {
		if c.Action == ActionNoOp {
			continue
		}
		color := actionColors[c.Action]
		fmt.Fprintf(&b, "%s %s %s\n", paint(color, symbols[c.Action]), paint(ansiBold, c.Namespace+"/"+c.Name), paint(color, "will be "+pastTense(c.Action)))
		if c.ImageFrom != "" {
			fmt.Fprintf(&b, "    image: %s\n", c.ImageFrom)
		}
		if ic := c.Image; ic != nil {
			fmt.Fprintf(&b, "    image policy: rolls %s (%s)\n        %s\n", ic.Pinned, ic.Verification(), ic.Reason)
		}
		for _, ch := range c.Changes {
			if c.Action == ActionCreate {
				fmt.Fprintf(&b, "    %s = %s\n", ch.Path, quoteOrUnset(ch.After))
				continue
			}
			fmt.Fprintf(&b, "    %s: %s → %s\n", ch.Path, quoteOrUnset(ch.Before), quoteOrUnset(ch.After))
		}
		if len(c.Steps) > 0 {
			b.WriteString("\n    Steps:\n")
		}
		for i, s := range c.Steps {
			fmt.Fprintf(&b, "    %2d. %s%s\n", i+1, paint(ansiBold, string(s.Action)), stepSubject(s))
			fmt.Fprintf(&b, "        %s\n", s.Reason)
			if s.Downtime {
				fmt.Fprintf(&b, "        %s\n", paint(ansiRed, "! downtime: writes stop during this step"))
			}
		}
		for _, warn := range c.Warnings {
			fmt.Fprintf(&b, "    %s %s\n", paint(ansiYellow, "Warning:"), warn)
		}
		if c.Window != nil {
			fmt.Fprintf(&b, "    %s %s\n", paint(ansiBold, "Window:"), c.Window.String())
		}
		b.WriteString("\n")
	}
	s := p.Summary()
	if !p.HasChanges() {
		fmt.Fprintf(&b, "No changes. %d %s Git.\n", s[ActionNoOp], plural(s[ActionNoOp], "cluster matches", "clusters match"))
	} else {
		fmt.Fprintf(&b, "%s %d to create, %d to update, %d to delete, %d to orphan, %d unchanged.\n",
			paint(ansiBold, "Plan:"), s[ActionCreate], s[ActionUpdate], s[ActionDelete], s[ActionOrphan], s[ActionNoOp])
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// stepSubject is what follows a step's action: instance, role, from → to.
func stepSubject(s Step) string {
	var b strings.Builder
	if s.Instance != "" {
		fmt.Fprintf(&b, " %s (%s)", s.Instance, s.Role)
	}
	switch {
	case s.Action == StepSwitchover:
		fmt.Fprintf(&b, ": %s → %s", s.From, s.To)
	case s.From != "" && s.To != "":
		fmt.Fprintf(&b, ": %s → %s", s.From, s.To)
	case s.To != "":
		fmt.Fprintf(&b, ": %s", s.To)
	}
	return b.String()
}

func pastTense(a Action) string {
	switch a {
	case ActionCreate:
		return "created"
	case ActionUpdate:
		return "updated"
	case ActionDelete:
		return "deleted"
	case ActionOrphan:
		return "orphaned"
	}
	return "left unchanged"
}

func quoteOrUnset(s *string) string {
	if s == nil {
		return "(unset)"
	}
	return fmt.Sprintf("%q", *s)
}

// short abbreviates a commit SHA as Git does.
func short(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
