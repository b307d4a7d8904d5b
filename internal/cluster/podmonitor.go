package cluster

import (
	"fmt"
	"regexp"
	"strings"
	"unicode/utf8"
)

// RelabelConfig is one of spec.monitoring's podMonitorRelabelings and
// podMonitorMetricRelabelings: the Prometheus Operator's RelabelConfig
// (monitoring.coreos.com/v1), copied into the PodMonitor as written.
type RelabelConfig struct {
	SourceLabels []string `json:"sourceLabels"`
	Separator    *string  `json:"separator"`
	TargetLabel  string   `json:"targetLabel"`
	Regex        string   `json:"regex"`
	// Modulus: an int (the operator's int64, at least 0) — a PodMonitor
	// hashes into far fewer buckets than an int holds.
	Modulus     int     `json:"modulus"`
	Replacement *string `json:"replacement"`
	// Action: the operator's enum, either case ("" is replace).
	Action string `json:"action"`
}

// PodMonitorOn says whether pgsync renders the cluster's PodMonitor.
func (s *Spec) PodMonitorOn() bool { return s.Monitoring != nil && s.Monitoring.EnablePodMonitor }

// relabelActions are the operator's actions, by their lower-case name
// (its CRD allows each in lower case and capitalised: replace, Replace,
// hashmod, HashMod …).
var relabelActions = map[string]string{
	"replace": "Replace", "keep": "Keep", "drop": "Drop", "hashmod": "HashMod", "labelmap": "LabelMap",
	"labeldrop": "LabelDrop", "labelkeep": "LabelKeep", "lowercase": "Lowercase", "uppercase": "Uppercase",
	"keepequal": "KeepEqual", "dropequal": "DropEqual",
}

const relabelActionList = "replace, keep, drop, hashmod, labelmap, labeldrop, labelkeep, lowercase, uppercase, keepequal, dropequal (or capitalised: Replace, HashMod …)"

// Prometheus' defaults: a field set to its default is as good as unset
// where an action takes no such field.
const (
	relabelDefaultSeparator   = ";"
	relabelDefaultRegex       = "(.*)"
	relabelDefaultReplacement = "$1"
)

// relabelTarget is a target label with $1 / ${name} references, which
// only replace takes (Prometheus' rule).
var relabelTarget = regexp.MustCompile(`^(?:(?:[a-zA-Z_]|\$(?:\{\w+\}|\w+))+\w*)+$`)

// validatePodMonitor checks both relabeling lists as the Prometheus
// Operator would before it writes them into Prometheus' configuration
// (a PodMonitor it cannot use is dropped from the scrape, silently to
// whoever applied it): here each problem is an error at its field.
func validatePodMonitor(c *Cluster, bad func(field, format string, args ...any)) {
	m := c.Spec.Monitoring
	if m == nil {
		return
	}
	for _, l := range []struct {
		field string
		rcs   []RelabelConfig
	}{{"spec.monitoring.podMonitorRelabelings", m.PodMonitorRelabelings}, {"spec.monitoring.podMonitorMetricRelabelings", m.PodMonitorMetricRelabelings}} {
		if len(l.rcs) > 0 && !m.EnablePodMonitor {
			bad(l.field, "has no effect without enablePodMonitor: true (the relabelings go into the PodMonitor pgsync renders)")
		}
		for i, rc := range l.rcs {
			validateRelabel(fmt.Sprintf("%s[%d]", l.field, i), rc, bad)
		}
	}
}

func validateRelabel(p string, rc RelabelConfig, bad func(field, format string, args ...any)) {
	action := strings.ToLower(rc.Action)
	if rc.Action == "" {
		action = "replace"
	}
	name, known := relabelActions[action]
	if !known || (rc.Action != "" && rc.Action != action && rc.Action != name) {
		bad(p+".action", "invalid value %q (allowed: %s)", rc.Action, relabelActionList)
		return // what the other fields need depends on the action
	}
	for j, l := range rc.SourceLabels {
		if !labelName(l) {
			bad(fmt.Sprintf("%s.sourceLabels[%d]", p, j), "%q is not a label name", l)
		}
	}
	if rc.Regex != "" {
		// Prometheus anchors the expression (^(?:REGEX)$) and compiles
		// it with Go's RE2, as here.
		if _, err := regexp.Compile("^(?:" + rc.Regex + ")$"); err != nil {
			bad(p+".regex", "not a regular expression: %v", err)
		}
	}
	if rc.Modulus < 0 {
		bad(p+".modulus", "must not be negative (got %d)", rc.Modulus)
	}
	set := func(s *string, def string) bool { return s != nil && *s != def }
	switch action {
	case "replace", "hashmod", "lowercase", "uppercase", "keepequal", "dropequal":
		switch {
		case rc.TargetLabel == "":
			bad(p+".targetLabel", "required: the label the %s action writes", rc.ActionName())
		case action == "replace" && strings.Contains(rc.TargetLabel, "$"):
			if !relabelTarget.MatchString(rc.TargetLabel) {
				bad(p+".targetLabel", "%q is not a label name, with $1 or ${name} references to the regex's groups", rc.TargetLabel)
			}
		case !labelName(rc.TargetLabel):
			bad(p+".targetLabel", "%q is not a label name", rc.TargetLabel)
		}
	}
	switch action {
	case "hashmod":
		if rc.Modulus == 0 {
			bad(p+".modulus", "required: the hashmod action needs a modulus of at least 1")
		}
	case "lowercase", "uppercase":
		if set(rc.Replacement, relabelDefaultReplacement) {
			bad(p+".replacement", "the %s action takes no replacement", rc.ActionName())
		}
	case "keepequal", "dropequal":
		for _, f := range []struct {
			field string
			set   bool
		}{{"regex", rc.Regex != "" && rc.Regex != relabelDefaultRegex}, {"modulus", rc.Modulus > 0},
			{"separator", set(rc.Separator, relabelDefaultSeparator)}, {"replacement", set(rc.Replacement, relabelDefaultReplacement)}} {
			if f.set {
				bad(p+"."+f.field, "the %s action takes only sourceLabels and targetLabel", rc.ActionName())
			}
		}
	case "labeldrop", "labelkeep":
		for _, f := range []struct {
			field string
			set   bool
		}{{"sourceLabels", len(rc.SourceLabels) > 0}, {"targetLabel", rc.TargetLabel != ""}, {"modulus", rc.Modulus > 0},
			{"separator", set(rc.Separator, relabelDefaultSeparator)}, {"replacement", set(rc.Replacement, relabelDefaultReplacement)}} {
			if f.set {
				bad(p+"."+f.field, "the %s action takes only regex (the label names to match)", rc.ActionName())
			}
		}
	case "labelmap":
		if rc.Replacement != nil && !relabelTarget.MatchString(*rc.Replacement) {
			bad(p+".replacement", "%q is not a label name, with $1 or ${name} references to the regex's groups", *rc.Replacement)
		}
	}
}

// ActionName is the action as written, or replace when it is not.
func (rc RelabelConfig) ActionName() string {
	if rc.Action == "" {
		return "replace"
	}
	return rc.Action
}

// labelName: Prometheus 3 takes any non-empty UTF-8 label name (2.x only
// [a-zA-Z_][a-zA-Z0-9_]*; pgsync cannot tell which version scrapes).
func labelName(s string) bool { return s != "" && utf8.ValidString(s) }
