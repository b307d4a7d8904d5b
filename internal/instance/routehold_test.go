package instance

import (
	"context"
	"io"
	"log/slog"
	"net"
	"testing"
	"time"
)

// The hold after a hand-over lasts while NAME-rw still routes here, ends
// for good once it has moved or the Service does not exist, and never
// outlasts routeHoldMax.
func TestRouteHeld(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		answers []routeAnswer
		at      []time.Duration // clock at each call
		want    []bool
	}{
		{"held until moved, then over for good", []routeAnswer{routeStillHere, routeStillHere, routeMoved, routeStillHere},
			[]time.Duration{0, time.Second, 2 * time.Second, 2 * time.Second}, []bool{true, true, false, false}},
		{"no Service: no hold", []routeAnswer{routeNoService}, []time.Duration{0}, []bool{false}},
		{"bounded by routeHoldMax", []routeAnswer{routeStillHere, routeStillHere},
			[]time.Duration{0, routeHoldMax}, []bool{true, false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now, calls := t0, 0
			m := &Manager{log: slog.New(slog.NewTextHandler(io.Discard, nil)), now: func() time.Time { return now },
				routeHoldUntil: t0.Add(routeHoldMax)}
			m.probeRoute = func(context.Context) routeAnswer { calls++; return tt.answers[calls-1] }
			for i, want := range tt.want {
				now = t0.Add(tt.at[i])
				if got := m.routeHeld(context.Background()); got != want {
					t.Errorf("call %d at +%s: held = %v, want %v", i, tt.at[i], got, want)
				}
			}
		})
	}
	if (&Manager{}).routeHeld(context.Background()) {
		t.Error("held without a hand-over")
	}
}

// dialRoute tells a listening address from a closed one and a name that
// does not resolve from both.
func TestDialRoute(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ctx := context.Background()
	probe := func(host string, port int) routeAnswer {
		return dialHost(host, port)(ctx)
	}
	if got := probe("127.0.0.1", port); got != routeMoved {
		t.Errorf("listening: %v, want moved", got)
	}
	ln.Close()
	if got := probe("127.0.0.1", port); got != routeStillHere {
		t.Errorf("closed: %v, want still here", got)
	}
	if got := probe("no-such-cluster-rw.invalid", port); got != routeNoService {
		t.Errorf("unresolvable: %v, want no service", got)
	}
}
