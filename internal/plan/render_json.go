package plan

import (
	"encoding/json"
	"io"
)

// The JSON document is a contract (docs/plan-json.md): fields are only ever
// added; anything incompatible bumps FormatVersion.
type jsonPlan struct {
	FormatVersion string `json:"format_version"`
	// Mode is what the plan started from: offline, base or live.
	Mode     Mode           `json:"mode"`
	Base     *string        `json:"base"`
	Head     string         `json:"head"`
	Clusters []jsonCluster  `json:"clusters"`
	Summary  map[Action]int `json:"summary"`
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
	Phase    Phase      `json:"phase"`
	Instance string     `json:"instance,omitempty"`
	// Ordinal and TargetOrdinal are omitted where Step has NoOrdinal.
	Ordinal       *int   `json:"ordinal,omitempty"`
	Role          Role   `json:"role,omitempty"`
	From          string `json:"from,omitempty"`
	To            string `json:"to,omitempty"`
	TargetOrdinal *int   `json:"target_ordinal,omitempty"`
	Reason        string `json:"reason"`
	Downtime      bool   `json:"downtime"`
}

func toJSONStep(s Step) jsonStep {
	ordinal := func(n int) *int {
		if n == NoOrdinal {
			return nil
		}
		return &n
	}
	return jsonStep{Action: s.Action, Instance: s.Instance, Ordinal: ordinal(s.Ordinal), TargetOrdinal: ordinal(s.TargetOrdinal),
		Phase: s.Phase, Role: s.Role, From: s.From, To: s.To, Reason: s.Reason, Downtime: s.Downtime}
}

// RenderJSON writes the plan as the versioned JSON document.
func RenderJSON(w io.Writer, p *Plan) error {
	doc := jsonPlan{FormatVersion: FormatVersion, Mode: p.modeOrDefault(), Head: p.Head, Clusters: []jsonCluster{}, Summary: p.Summary()}
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
			jc.Steps = append(jc.Steps, toJSONStep(s))
		}
		jc.Warnings = append(jc.Warnings, c.Warnings...)
		doc.Clusters = append(doc.Clusters, jc)
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(doc)
}

// modeOrDefault is Mode, or what Base implies for a plan made without one.
func (p *Plan) modeOrDefault() Mode {
	switch {
	case p.Mode != "":
		return p.Mode
	case p.Base != "":
		return ModeBase
	}
	return ModeOffline
}
