package main

import (
	"strings"
	"testing"
)

// TestLockDurationFlag: apply, run and switchover refuse a lock duration
// the Lease cannot carry, before they connect to anything.
func TestLockDurationFlag(t *testing.T) {
	for _, args := range [][]string{
		{"apply", "--auto-approve", "--lock-duration", "2s"},
		{"run", "--lock-duration", "1500ms"},
		{"switchover", "ns/web", "--lock-duration", "11m"},
	} {
		res := pgsync(t, append(args, "--kubeconfig", "/nonexistent")...)
		if res.code != 1 || !strings.Contains(res.stderr, "--lock-duration") || !strings.Contains(res.stderr, "whole seconds from 6s to 10m0s") {
			t.Errorf("pgsync %s: exit %d, want 1 saying what --lock-duration allows:\n%s", strings.Join(args, " "), res.code, res.stderr)
		}
	}
}
