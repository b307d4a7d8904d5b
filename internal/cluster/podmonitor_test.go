package cluster

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// TestPodMonitorCorpus: CloudNativePG's documented PodMonitor with
// relabelings loads, with what it says.
func TestPodMonitorCorpus(t *testing.T) {
	for p, c := range loadEach(t, "testdata/cnpg/monitoring-podmonitor.yaml", 1) {
		m := c.Spec.Monitoring
		if !c.Spec.PodMonitorOn() || len(m.PodMonitorMetricRelabelings) != 2 || len(m.PodMonitorRelabelings) != 2 {
			t.Fatalf("%s: monitoring %+v", p, m)
		}
		if r := m.PodMonitorRelabelings[1]; r.Action != "Replace" || *r.Separator != ";" || r.Regex != "(.+)" || r.TargetLabel != "node" {
			t.Errorf("%s: second relabeling %+v", p, r)
		}
		if got := c.Pos("spec.monitoring.podMonitorRelabelings[0].replacement").String(); got != "monitoring-podmonitor.yaml:27:20" {
			t.Errorf("%s: position of the first replacement = %s", p, got)
		}
	}
	// Without the field there is no PodMonitor.
	for _, s := range []Spec{{}, {Monitoring: &MonitoringConfiguration{}}} {
		if s.PodMonitorOn() {
			t.Errorf("PodMonitorOn of %+v", s.Monitoring)
		}
	}
}

// TestPodMonitorValidation: every problem of the relabelings at its
// field, in one pass, by the Prometheus Operator's rules.
func TestPodMonitorValidation(t *testing.T) {
	head := "apiVersion: postgresql.cnpg.io/v1\nkind: Cluster\nmetadata:\n  name: pg\n  namespace: x\nspec:\n  imageName: ghcr.io/cloudnative-pg/postgresql:16.4\n  instances: 1\n  storage:\n    size: 1Gi\n  monitoring:\n"
	for _, tc := range []struct {
		name, body string
		want       []string
	}{
		{"fine", strings.Join([]string{
			"    enablePodMonitor: true",
			"    podMonitorRelabelings:",
			"    - {sourceLabels: [a, b], separator: '/', regex: '(.*)/x', targetLabel: 'c_${1}', replacement: '$1', action: replace}",
			"    - {sourceLabels: [a], regex: x, action: keep}",
			"    - {sourceLabels: [a], regex: x, action: Drop}",
			"    - {sourceLabels: [a], targetLabel: shard, modulus: 4, action: hashmod}",
			"    - {regex: '__meta_(.+)', replacement: 'm_$1', action: labelmap}",
			"    - {regex: tmp.*, action: labeldrop}",
			"    - {regex: 'keep|me', separator: ';', replacement: '$1', action: LabelKeep}",
			"    - {sourceLabels: [a], targetLabel: a, action: lowercase}",
			"    - {sourceLabels: [a], targetLabel: b, action: KeepEqual}",
			"    podMonitorMetricRelabelings:",
			"    - {sourceLabels: [__name__], regex: 'go_.*', action: drop}",
			"    - {sourceLabels: [a], targetLabel: ünïcode, action: uppercase}",
			"    - {sourceLabels: [a], targetLabel: b, regex: '(.*)', action: dropequal}",
		}, "\n"), nil},
		{"off", "    podMonitorRelabelings:\n    - {action: drop, sourceLabels: [a]}\n", []string{
			`c.yaml:13:5: spec.monitoring.podMonitorRelabelings: has no effect without enablePodMonitor: true (the relabelings go into the PodMonitor pgsync renders)`,
		}},
		{"problems", strings.Join([]string{
			"    enablePodMonitor: true",
			"    podMonitorRelabelings:",
			"    - {action: rename, targetLabel: x}",
			"    - {action: REPLACE, targetLabel: x}",
			"    - {sourceLabels: [a, ''], regex: '(unclosed'}",
			"    - {sourceLabels: [a], targetLabel: '1$bad', action: replace}",
			"    - {sourceLabels: [a], targetLabel: x, action: hashmod}",
			"    - {sourceLabels: [a], targetLabel: x, modulus: -1, action: hashmod}",
			"    podMonitorMetricRelabelings:",
			"    - {sourceLabels: [a], action: lowercase, replacement: x}",
			"    - {sourceLabels: [a], targetLabel: b, regex: x, separator: '-', action: keepequal}",
			"    - {sourceLabels: [a], targetLabel: b, regex: x, action: labeldrop}",
			"    - {regex: '(.+)', replacement: '-x', action: labelmap}",
			"    - {action: dropequal, sourceLabels: [a]}",
		}, "\n"), []string{
			`c.yaml:14:16: spec.monitoring.podMonitorRelabelings[0].action: invalid value "rename" (allowed: replace, keep, drop, hashmod, labelmap, labeldrop, labelkeep, lowercase, uppercase, keepequal, dropequal (or capitalised: Replace, HashMod …))`,
			`c.yaml:15:16: spec.monitoring.podMonitorRelabelings[1].action: invalid value "REPLACE" (allowed: replace, keep, drop, hashmod, labelmap, labeldrop, labelkeep, lowercase, uppercase, keepequal, dropequal (or capitalised: Replace, HashMod …))`,
			`c.yaml:16:26: spec.monitoring.podMonitorRelabelings[2].sourceLabels[1]: "" is not a label name`,
			`c.yaml:16:38: spec.monitoring.podMonitorRelabelings[2].regex: not a regular expression: error parsing regexp: missing closing ): ` + "`^(?:(unclosed)$`",
			`c.yaml:16:7: spec.monitoring.podMonitorRelabelings[2].targetLabel: required: the label the replace action writes`,
			`c.yaml:17:40: spec.monitoring.podMonitorRelabelings[3].targetLabel: "1$bad" is not a label name, with $1 or ${name} references to the regex's groups`,
			`c.yaml:18:7: spec.monitoring.podMonitorRelabelings[4].modulus: required: the hashmod action needs a modulus of at least 1`,
			`c.yaml:19:52: spec.monitoring.podMonitorRelabelings[5].modulus: must not be negative (got -1)`,
			`c.yaml:21:7: spec.monitoring.podMonitorMetricRelabelings[0].targetLabel: required: the label the lowercase action writes`,
			`c.yaml:21:59: spec.monitoring.podMonitorMetricRelabelings[0].replacement: the lowercase action takes no replacement`,
			`c.yaml:22:50: spec.monitoring.podMonitorMetricRelabelings[1].regex: the keepequal action takes only sourceLabels and targetLabel`,
			`c.yaml:22:64: spec.monitoring.podMonitorMetricRelabelings[1].separator: the keepequal action takes only sourceLabels and targetLabel`,
			`c.yaml:23:22: spec.monitoring.podMonitorMetricRelabelings[2].sourceLabels: the labeldrop action takes only regex (the label names to match)`,
			`c.yaml:23:40: spec.monitoring.podMonitorMetricRelabelings[2].targetLabel: the labeldrop action takes only regex (the label names to match)`,
			`c.yaml:24:36: spec.monitoring.podMonitorMetricRelabelings[3].replacement: "-x" is not a label name, with $1 or ${name} references to the regex's groups`,
			`c.yaml:25:7: spec.monitoring.podMonitorMetricRelabelings[4].targetLabel: required: the label the dropequal action writes`,
		}},
		{"unknown field", "    enablePodMonitor: true\n    podMonitorRelabelings:\n    - {sourceLabel: [a], action: drop}\n", []string{
			`c.yaml:14:8: spec.monitoring.podMonitorRelabelings[0].sourceLabel: unknown field "sourceLabel" (did you mean sourceLabels?)`,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Load([]File{{Path: "c.yaml", Data: []byte(head + tc.body + "\n")}})
			errs, _ := err.(Errors)
			if err != nil && errs == nil {
				t.Fatal(err)
			}
			var got []string
			for _, e := range errs {
				got = append(got, e.String())
			}
			slices.Sort(got)
			want := slices.Clone(tc.want)
			slices.Sort(want)
			if !cmp.Equal(got, want) {
				t.Errorf("got\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
			}
		})
	}
}
