package httpapi

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
)

type snap struct {
	ready bool
	why   string
}

func (s snap) Ready() (bool, string) { return s.ready, s.why }
func (s snap) Status() any           { return map[string]string{"role": "standby"} }

func TestHandler(t *testing.T) {
	tests := []struct {
		snap   snap
		path   string
		code   int
		body   string
		method string
	}{
		{snap{true, ""}, "/healthz", 200, "ok\n", "GET"},
		{snap{false, "x"}, "/healthz", 200, "ok\n", "GET"},
		{snap{true, ""}, "/readyz", 200, "ok\n", "GET"},
		{snap{false, "standby is not streaming"}, "/readyz", 503, "standby is not streaming\n", "GET"},
		{snap{true, ""}, "/status", 200, "", "GET"},
		{snap{true, ""}, "/status", 405, "", "POST"},
		{snap{true, ""}, "/nope", 404, "", "GET"},
	}
	for _, tc := range tests {
		rec := httptest.NewRecorder()
		Handler(tc.snap).ServeHTTP(rec, httptest.NewRequest(tc.method, tc.path, nil))
		if rec.Code != tc.code {
			t.Errorf("%s %s: code %d, want %d", tc.method, tc.path, rec.Code, tc.code)
		}
		if tc.body != "" && rec.Body.String() != tc.body {
			t.Errorf("%s %s: body %q, want %q", tc.method, tc.path, rec.Body.String(), tc.body)
		}
		if tc.path == "/status" && tc.code == http.StatusOK {
			var m map[string]string
			if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil || m["role"] != "standby" {
				t.Errorf("/status body %q: %v", rec.Body.String(), err)
			}
		}
	}
}
