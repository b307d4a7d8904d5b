package plan

import (
	"fmt"
	"io"
	"strings"
)

// MarkdownLimit keeps a rendering under GitHub's 65,536-character limit
// for a pull-request comment, with room for the truncation note.
const MarkdownLimit = 65000

// RenderMarkdown writes the plan for a pull-request comment: a summary
// table of the changed clusters, then each cluster's changes and steps in a
// collapsible section. Output longer than MarkdownLimit is cut at a cluster
// boundary with a note saying how many clusters were left out.
func RenderMarkdown(w io.Writer, p *Plan) error {
	var head strings.Builder
	s := p.Summary()
	head.WriteString("### pgsync plan\n\n")
	switch {
	case p.Mode == ModeLive:
		fmt.Fprintf(&head, "Head `%s`, planned against the live clusters.\n\n", short(p.Head))
	case p.Base != "":
		fmt.Fprintf(&head, "Base `%s` → head `%s`.\n\n", short(p.Base), short(p.Head))
	case p.Head != "":
		fmt.Fprintf(&head, "Head `%s`, planned offline against an empty Kubernetes.\n\n", short(p.Head))
	}
	if ic := p.InstanceImage; ic != nil {
		fmt.Fprintf(&head, "Instance image: `%s` (%s) — %s\n\n", mdEscape(ic.Pinned), mdEscape(ic.Verification()), mdEscape(ic.Reason))
	}
	fmt.Fprintf(&head, "**%d to create, %d to update, %d to delete, %d to orphan, %d unchanged.**\n\n",
		s[ActionCreate], s[ActionUpdate], s[ActionDelete], s[ActionOrphan], s[ActionNoOp])
	if !p.HasChanges() {
		head.WriteString("No changes.\n")
		_, err := io.WriteString(w, head.String())
		return err
	}

	var table strings.Builder
	table.WriteString("| Cluster | Action | Changes |\n|---|---|---|\n")
	var sections []string
	for _, c := range p.Clusters {
		if c.Action == ActionNoOp {
			continue
		}
		paths := make([]string, 0, len(c.Changes))
		for _, ch := range c.Changes {
			paths = append(paths, "`"+mdEscape(ch.Path)+"`")
		}
		if len(paths) > 8 {
			paths = append(paths[:8], fmt.Sprintf("and %d more", len(c.Changes)-8))
		}
		fmt.Fprintf(&table, "| `%s/%s` | %s %s | %s |\n", c.Namespace, c.Name, symbols[c.Action], c.Action, strings.Join(paths, ", "))
		sections = append(sections, markdownCluster(c))
	}
	table.WriteString("\n")

	out := head.String() + table.String()
	if len(out) > MarkdownLimit {
		// Even the table does not fit: cut it by whole rows.
		out = truncateLines(out, MarkdownLimit-200)
		out += "\n\n> **Truncated:** the plan is too long for a comment; run `pgsync plan --format text` to see all of it.\n"
		_, err := io.WriteString(w, out)
		return err
	}
	for i, sec := range sections {
		if len(out)+len(sec) > MarkdownLimit-200 {
			out += fmt.Sprintf("\n> **Truncated:** %d more %s not shown; run `pgsync plan --format text` to see all of it.\n",
				len(sections)-i, plural(len(sections)-i, "cluster is", "clusters are"))
			break
		}
		out += sec
	}
	_, err := io.WriteString(w, out)
	return err
}

func markdownCluster(c ClusterPlan) string {
	var b strings.Builder
	fmt.Fprintf(&b, "<details><summary><code>%s/%s</code>: %s, %d %s</summary>\n\n", c.Namespace, c.Name, c.Action, len(c.Steps), plural(len(c.Steps), "step", "steps"))
	for _, w := range c.Warnings {
		fmt.Fprintf(&b, "> [!WARNING]\n> %s\n\n", mdEscape(w))
	}
	if c.Window != nil {
		fmt.Fprintf(&b, "> [!NOTE]\n> %s\n\n", mdEscape(c.Window.String()))
	}
	if c.ImageFrom != "" {
		fmt.Fprintf(&b, "Image: %s\n\n", mdEscape(c.ImageFrom))
	}
	if ic := c.Image; ic != nil {
		fmt.Fprintf(&b, "Image policy: rolls `%s` (%s) — %s\n\n", mdEscape(ic.Pinned), mdEscape(ic.Verification()), mdEscape(ic.Reason))
	}
	if len(c.Changes) > 0 {
		b.WriteString("| Field | Before | After |\n|---|---|---|\n")
		for _, ch := range c.Changes {
			fmt.Fprintf(&b, "| `%s` | %s | %s |\n", mdEscape(ch.Path), mdValue(ch.Before), mdValue(ch.After))
		}
		b.WriteString("\n")
	}
	for i, s := range c.Steps {
		fmt.Fprintf(&b, "%d. **%s**%s — %s", i+1, s.Action, mdEscape(stepSubject(s)), mdEscape(s.Reason))
		if s.Downtime {
			b.WriteString(" **(downtime)**")
		}
		b.WriteString("\n")
	}
	b.WriteString("\n</details>\n\n")
	return b.String()
}

func mdValue(s *string) string {
	if s == nil {
		return "_unset_"
	}
	return "`" + strings.ReplaceAll(mdEscape(*s), "`", "'") + "`"
}

// mdEscape keeps user text from breaking tables or injecting markup.
func mdEscape(s string) string {
	r := strings.NewReplacer("|", "\\|", "\n", " ", "<", "&lt;", ">", "&gt;")
	return r.Replace(s)
}

func truncateLines(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	cut := strings.LastIndexByte(s[:limit], '\n')
	if cut < 0 {
		return s[:limit]
	}
	return s[:cut]
}
