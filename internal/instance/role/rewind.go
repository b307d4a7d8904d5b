package role

import (
	"bufio"
	"fmt"
	"strconv"
	"strings"
)

// HistoryEntry is one line of a timeline history file: timeline TLI ended at
// SwitchPoint, where its child timeline begins.
type HistoryEntry struct {
	TLI         uint32
	SwitchPoint LSN
}

// ParseHistory reads a timeline history file ("N.history": "parentTLI
// switchpoint reason" per line, comments start with '#').
func ParseHistory(text string) ([]HistoryEntry, error) {
	var out []HistoryEntry
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 2 {
			return nil, fmt.Errorf("timeline history: malformed line %q", line)
		}
		tli, err := strconv.ParseUint(f[0], 10, 32)
		if err != nil {
			return nil, fmt.Errorf("timeline history: line %q: %w", line, err)
		}
		sp, err := ParseLSN(f[1])
		if err != nil {
			return nil, fmt.Errorf("timeline history: line %q: %w", line, err)
		}
		out = append(out, HistoryEntry{TLI: uint32(tli), SwitchPoint: sp})
	}
	return out, sc.Err()
}

// NeedsRewind reports whether a cleanly stopped server, whose last record is
// the shutdown checkpoint at localCheckpoint on timeline localTLI, must be
// rewound before it can follow a primary on timeline primaryTLI with the
// given history.
//
// It can follow without a rewind when it is on the primary's timeline, or on
// an ancestor timeline that the primary left after replaying that checkpoint
// record (the switch point is the end of the last replayed record, so it lies
// past the record's start). Anything else (an unknown timeline, or local WAL
// at or past the fork) means the histories diverged.
func NeedsRewind(localTLI uint32, localCheckpoint LSN, primaryTLI uint32, history []HistoryEntry) bool {
	if localTLI == primaryTLI {
		return false
	}
	for _, h := range history {
		if h.TLI == localTLI {
			return localCheckpoint >= h.SwitchPoint
		}
	}
	return true
}

// ForkPoint is where the primary's history left timeline localTLI: the
// first WAL position the two histories do not share. ok is false when the
// history does not pass through localTLI (or it is the primary's own).
func ForkPoint(localTLI uint32, history []HistoryEntry) (LSN, bool) {
	for _, h := range history {
		if h.TLI == localTLI {
			return h.SwitchPoint, true
		}
	}
	return 0, false
}

// NeedsCrashRecovery: data a primary left without a shutdown checkpoint
// (it crashed, or was killed) must finish crash recovery before its
// timeline can be compared with the new primary's: its latest checkpoint
// lies before the end of its WAL, so NeedsRewind would judge on a
// position that says nothing about what it wrote afterwards. A standby's
// data ("in archive recovery") needs nothing: it wrote no WAL of its own.
func NeedsCrashRecovery(state string, localTLI, primaryTLI uint32) bool {
	if localTLI == primaryTLI {
		return false
	}
	switch state {
	case "in production", "shutting down", "in crash recovery":
		return true
	}
	return false
}
