package plan

import (
	"bytes"
	"encoding/json"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/pgsync/pgsync/internal/cluster"
)

// checkTypedFields asserts that a cluster plan's typed step fields agree
// with its strings: Ordinal is the number in Instance's name (NoOrdinal
// without one), a switchover's TargetOrdinal is the number in To (NoOrdinal
// on every other step), and phases never go back.
func checkTypedFields(t *testing.T, cp ClusterPlan, seen map[Phase]bool) {
	t.Helper()
	number := func(instance string) int {
		n, err := strconv.Atoi(strings.TrimPrefix(instance, cp.Name+"-"))
		if err != nil || !strings.HasPrefix(instance, cp.Name+"-") {
			t.Fatalf("%s: %q is not %s-<ordinal>", cp.Name, instance, cp.Name)
		}
		return n
	}
	last := -1
	for _, s := range cp.Steps {
		if s.Instance == "" && s.Ordinal != NoOrdinal {
			t.Errorf("%s: cluster-wide %s has ordinal %d", cp.Name, s.Action, s.Ordinal)
		}
		if s.Instance != "" && s.Ordinal != number(s.Instance) {
			t.Errorf("%s: %s %s has ordinal %d", cp.Name, s.Action, s.Instance, s.Ordinal)
		}
		switch {
		case s.Action == StepSwitchover && s.TargetOrdinal != number(s.To):
			t.Errorf("%s: switchover to %s has target ordinal %d", cp.Name, s.To, s.TargetOrdinal)
		case s.Action != StepSwitchover && s.TargetOrdinal != NoOrdinal:
			t.Errorf("%s: %s has target ordinal %d", cp.Name, s.Action, s.TargetOrdinal)
		}
		phase := slices.Index(Phases, s.Phase)
		if phase < 0 {
			t.Errorf("%s: %s %s has no phase (%q)", cp.Name, s.Action, s.Instance, s.Phase)
		}
		if phase < last {
			t.Errorf("%s: %s %s in phase %s comes after phase %s", cp.Name, s.Action, s.Instance, s.Phase, Phases[last])
		}
		last = max(last, phase)
		seen[s.Phase] = true
	}
}

// TestStepFields checks the typed fields of every step of the golden plans
// and of every plan of random rollouts, executed step by step; together
// they reach every phase.
func TestStepFields(t *testing.T) {
	seen := map[Phase]bool{}
	for _, p := range goldenPlans(t) {
		for _, cp := range p.Clusters {
			checkTypedFields(t, cp, seen)
		}
	}
	r := rand.New(rand.NewPCG(3, 4))
	for run := 0; run < 300; run++ {
		base, head := randomSpec(t, r, r.IntN(3) == 0), randomSpec(t, r, false)
		if head.Spec.Storage.Size.Cmp(base.Spec.Storage.Size) < 0 {
			head.Spec.Storage.Size = base.Spec.Storage.Size
		}
		observed := Converged([]*cluster.Cluster{base})
		o := &observed.Clusters[0]
		o.Primary = r.IntN(len(o.Instances))
		for iteration := 0; iteration <= 40; iteration++ {
			p, err := Make([]*cluster.Cluster{head}, observed, Options{})
			if err != nil {
				t.Fatal(err)
			}
			cp := p.Clusters[0]
			checkTypedFields(t, cp, seen)
			if len(cp.Steps) == 0 {
				break
			}
			execute(t, head, o, cp.Steps[0])
		}
	}
	for _, phase := range Phases {
		if !seen[phase] {
			t.Errorf("no plan has a step in phase %s", phase)
		}
	}
}

// TestJSONOrdinals: the JSON document omits the ordinals where a step has
// none (cluster-wide steps; target_ordinal except on a switchover) and
// writes ordinal 0 rather than dropping it.
func TestJSONOrdinals(t *testing.T) {
	var buf bytes.Buffer
	if err := RenderJSON(&buf, goldenPlans(t)["minor-update"]); err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Clusters []struct {
			Steps []map[string]any `json:"steps"`
		} `json:"clusters"`
	}
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	sawZero, sawTarget := false, false
	for _, c := range doc.Clusters {
		for _, s := range c.Steps {
			_, hasOrdinal := s["ordinal"]
			_, hasTarget := s["target_ordinal"]
			_, hasInstance := s["instance"]
			if _, ok := s["phase"]; !ok {
				t.Errorf("step without phase: %v", s)
			}
			if hasOrdinal != hasInstance {
				t.Errorf("ordinal present %v, instance present %v: %v", hasOrdinal, hasInstance, s)
			}
			if hasTarget != (s["action"] == string(StepSwitchover)) {
				t.Errorf("target_ordinal present %v on %v", hasTarget, s)
			}
			sawZero = sawZero || s["ordinal"] == 0.0
			sawTarget = sawTarget || hasTarget
		}
	}
	if !sawZero || !sawTarget {
		t.Errorf("the plan has no step on ordinal 0 (%v) or no switchover (%v)", sawZero, sawTarget)
	}
}
