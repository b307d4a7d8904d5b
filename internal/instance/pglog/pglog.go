// Package pglog turns PostgreSQL's stderr (log_line_prefix '%m [%p] ') into
// JSON log records on the manager's slog logger, so a container's stdout is
// one stream of JSON lines.
//
// It must not import `k8s.io/client-go/...`, `github.com/jackc/pgx/...` or
// `pgsync/...`.
package pglog

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"strconv"
	"strings"
)

// Line is one parsed log line.
type Line struct {
	Time     string // as postgres printed it, "" when the prefix is absent
	PID      int
	Severity string // LOG, ERROR, FATAL, … ("" when absent)
	Message  string
}

var severities = []string{"DEBUG5", "DEBUG4", "DEBUG3", "DEBUG2", "DEBUG1", "DEBUG", "INFO", "NOTICE",
	"WARNING", "ERROR", "LOG", "FATAL", "PANIC", "DETAIL", "HINT", "QUERY", "CONTEXT", "LOCATION", "STATEMENT"}

// Parse splits a line written with log_line_prefix '%m [%p] '. Lines without
// the prefix (a tool's own output) come back whole in Message.
func Parse(s string) Line {
	s = strings.TrimRight(s, "\r\n")
	l := Line{Message: s}
	open := strings.Index(s, " [")
	if open < 0 {
		return l
	}
	close := strings.Index(s[open:], "] ")
	if close < 0 {
		return l
	}
	pid, err := strconv.Atoi(s[open+2 : open+close])
	if err != nil || !looksLikeTime(s[:open]) {
		return l
	}
	l.Time, l.PID = s[:open], pid
	rest := s[open+close+2:]
	if sev, msg, ok := strings.Cut(rest, ":  "); ok && isSeverity(sev) {
		l.Severity, rest = sev, msg
	}
	l.Message = rest
	return l
}

func looksLikeTime(s string) bool {
	// "2026-11-26 00:40:01.123 UTC"
	return len(s) >= 19 && s[4] == '-' && s[7] == '-' && s[10] == ' ' && s[13] == ':'
}

func isSeverity(s string) bool {
	for _, v := range severities {
		if s == v {
			return true
		}
	}
	return false
}

// Level maps a PostgreSQL severity to a slog level.
func Level(sev string) slog.Level {
	switch sev {
	case "ERROR", "FATAL", "PANIC":
		return slog.LevelError
	case "WARNING":
		return slog.LevelWarn
	case "":
		return slog.LevelInfo
	}
	if strings.HasPrefix(sev, "DEBUG") {
		return slog.LevelDebug
	}
	return slog.LevelInfo
}

// Relay reads r to EOF and logs each line with logger "postgres" (or the
// given source name).
func Relay(log *slog.Logger, source string, r io.Reader) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		l := Parse(sc.Text())
		attrs := []slog.Attr{slog.String("logger", source)}
		if l.PID != 0 {
			attrs = append(attrs, slog.Int("pid", l.PID), slog.String("pg_time", l.Time))
		}
		if l.Severity != "" {
			attrs = append(attrs, slog.String("severity", l.Severity))
		}
		log.LogAttrs(context.Background(), Level(l.Severity), l.Message, attrs...)
	}
}
