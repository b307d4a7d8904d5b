package plan

import (
	"encoding/json"
	"fmt"
	"io"
	"time"
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
	// InstanceImage is Plan.InstanceImage (--image-policy).
	InstanceImage *jsonImageCheck `json:"instance_image,omitempty"`
}

// jsonImageCheck is an ImageCheck (--image-policy).
type jsonImageCheck struct {
	Image    string   `json:"image"`
	Pinned   string   `json:"pinned"`
	Digest   string   `json:"digest,omitempty"`
	SignedBy []string `json:"signed_by"`
	Reason   string   `json:"reason"`
}

func toJSONImage(ic *ImageCheck) *jsonImageCheck {
	if ic == nil {
		return nil
	}
	return &jsonImageCheck{Image: ic.Image, Pinned: ic.Pinned, Digest: ic.Digest, SignedBy: append([]string{}, ic.SignedBy...), Reason: ic.Reason}
}

func fromJSONImage(j *jsonImageCheck) *ImageCheck {
	if j == nil {
		return nil
	}
	return &ImageCheck{Image: j.Image, Pinned: j.Pinned, Digest: j.Digest, SignedBy: j.SignedBy, Reason: j.Reason}
}

type jsonCluster struct {
	Namespace string       `json:"namespace"`
	Name      string       `json:"name"`
	Action    Action       `json:"action"`
	Changes   []jsonChange `json:"changes"`
	Steps     []jsonStep   `json:"steps"`
	Warnings  []string     `json:"warnings"`
	// Observed is the fingerprint of the observed state (live plans
	// only): what a saved plan was computed from.
	Observed string `json:"observed,omitempty"`
	// Halted names the instance that halts the rollout, if any.
	Halted string `json:"halted,omitempty"`
	// MaintenanceWindow is set when the cluster's restarts and switchovers
	// wait for a maintenance window.
	MaintenanceWindow *jsonWindow `json:"maintenance_window,omitempty"`
	// ImageFrom is ClusterPlan.ImageFrom.
	ImageFrom string `json:"image_from,omitempty"`
	// ImagePolicy is ClusterPlan.Image (--image-policy).
	ImagePolicy *jsonImageCheck `json:"image_policy,omitempty"`
}

type jsonWindow struct {
	Schedule string `json:"schedule"`
	Open     bool   `json:"open"`
	// NextStart and NextEnd (RFC 3339) are the current opening when Open,
	// else the next one.
	NextStart string `json:"next_start"`
	NextEnd   string `json:"next_end"`
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
	doc := jsonPlan{FormatVersion: FormatVersion, Mode: p.modeOrDefault(), Head: p.Head, Clusters: []jsonCluster{}, Summary: p.Summary(),
		InstanceImage: toJSONImage(p.InstanceImage)}
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
		if doc.Mode == ModeLive {
			jc.Observed = c.Observed
		}
		jc.Halted = c.Halted
		jc.ImageFrom = c.ImageFrom
		jc.ImagePolicy = toJSONImage(c.Image)
		if w := c.Window; w != nil {
			jc.MaintenanceWindow = &jsonWindow{Schedule: w.Schedule, Open: w.Open,
				NextStart: w.NextStart.Format(time.RFC3339), NextEnd: w.NextEnd.Format(time.RFC3339)}
		}
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

// ReadJSON reads a plan document back (a saved plan): the clusters, their
// steps and what the plan was computed from. It refuses another format
// version.
func ReadJSON(r io.Reader) (*Plan, error) {
	var doc jsonPlan
	dec := json.NewDecoder(r)
	if err := dec.Decode(&doc); err != nil {
		return nil, fmt.Errorf("read plan: %w", err)
	}
	if doc.FormatVersion != FormatVersion {
		return nil, fmt.Errorf("read plan: format_version %q, this pgsync reads %q", doc.FormatVersion, FormatVersion)
	}
	p := &Plan{Head: doc.Head, Mode: doc.Mode, InstanceImage: fromJSONImage(doc.InstanceImage)}
	if doc.Base != nil {
		p.Base = *doc.Base
	}
	for _, jc := range doc.Clusters {
		c := ClusterPlan{Namespace: jc.Namespace, Name: jc.Name, Action: jc.Action, Warnings: jc.Warnings, Observed: jc.Observed, Halted: jc.Halted, ImageFrom: jc.ImageFrom, Image: fromJSONImage(jc.ImagePolicy)}
		for _, ch := range jc.Changes {
			c.Changes = append(c.Changes, Change(ch))
		}
		for _, js := range jc.Steps {
			st := Step{Action: js.Action, Phase: js.Phase, Instance: js.Instance, Role: js.Role, From: js.From, To: js.To,
				Reason: js.Reason, Downtime: js.Downtime, Ordinal: NoOrdinal, TargetOrdinal: NoOrdinal}
			if js.Ordinal != nil {
				st.Ordinal = *js.Ordinal
			}
			if js.TargetOrdinal != nil {
				st.TargetOrdinal = *js.TargetOrdinal
			}
			c.Steps = append(c.Steps, st)
		}
		p.Clusters = append(p.Clusters, c)
	}
	return p, nil
}
