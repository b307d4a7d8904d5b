// Package httpapi serves the instance manager's probes and status:
// /healthz (the manager is alive), /readyz (postgres accepts connections
// and, on a standby, streams), /status (JSON). Handlers only read a
// snapshot; they never touch postgres or the API server.
//
// It must not import `k8s.io/client-go/...`, `github.com/jackc/pgx/...` or
// `pgsync/...`: the status it serves is handed to it as a value
// (Snapshot.Status).
package httpapi

import (
	"encoding/json"
	"net/http"
)

// Snapshot is what the handlers need.
type Snapshot interface {
	// Ready reports readiness and, when not ready, why.
	Ready() (bool, string)
	// Status returns the JSON-serialisable status.
	Status() any
}

// Handler returns the mux.
func Handler(s Snapshot) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		ok, why := s.Ready()
		if !ok {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(why + "\n"))
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	})
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		_ = enc.Encode(s.Status())
	})
	return mux
}
