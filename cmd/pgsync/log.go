package main

import (
	"fmt"
	"io"
	"log/slog"
	"strings"
)

// cliLogger is the human-readable logger of the CLI commands (the daemon
// and the instance manager log JSON instead).
func cliLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(strings.ToUpper(level))); err != nil {
		return nil, fmt.Errorf("--log-level %q: allowed: debug, info, warn, error", level)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l})), nil
}
