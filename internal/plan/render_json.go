package plan

import (
	"encoding/json"
	"io"
)

// The JSON document is a contract (docs/plan-json.md): fields are only ever
// added; anything incompatible bumps FormatVersion.
type jsonPlan struct {
	FormatVersion string         `json:"format_version"`
	Base          *string        `json:"base"`
	Head          string         `json:"head"`
	Clusters      []jsonCluster  `json:"clusters"`
	Summary       map[Action]int `json:"summary"`
}

type jsonCluster struct {
	Namespace string       `json:"namespace"`
	Name      string       `json:"name"`
	Action    Action       `json:"action"`
	Changes   []jsonChange `json:"changes"`
	Steps     []jsonStep   `json:"steps"`
	Warnings  []string     `json:"warnings"`
}

type jsonChange struct {
	Path   string  `json:"path"`
	Before *string `json:"before"`
	After  *string `json:"after"`
}

type jsonStep struct {
	Action   StepAction `json:"action"`
	Instance string     `json:"instance,omitempty"`
	Role     Role       `json:"role,omitempty"`
	From     string     `json:"from,omitempty"`
	To       string     `json:"to,omitempty"`
	Reason   string     `json:"reason"`
	Downtime bool       `json:"downtime"`
}

// RenderJSON writes the plan as the versioned JSON document.
func RenderJSON(w io.Writer, p *Plan) error {
	doc := jsonPlan{FormatVersion: FormatVersion, Head: p.Head, Clusters: []jsonCluster{}, Summary: p.Summary()}
	if p.Base != "" {
		base := p.Base
		doc.Base = &base
	}
	for _, c := range p.Clusters {
		jc := jsonCluster{Namespace: c.Namespace, Name: c.Name, Action: c.Action,
			Changes: []jsonChange{}, Steps: []jsonStep{}, Warnings: []string{}}
		for _, ch := range c.Changes {
			jc.Changes = append(jc.Changes, jsonChange(ch))
		}
		for _, s := range c.Steps {
			jc.Steps = append(jc.Steps, jsonStep(s))
		}
		jc.Warnings = append(jc.Warnings, c.Warnings...)
		doc.Clusters = append(doc.Clusters, jc)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(doc)
}
