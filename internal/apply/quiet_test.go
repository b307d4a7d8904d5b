package apply

import (
	"testing"
	"time"
)

func TestLastEndpointChange(t *testing.T) {
	at := func(s string) time.Time {
		v, err := time.Parse("15:04:05.000", s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		name            string
		recorded, ready string
		want            string
	}{
		{"no readiness seen: the end of the recorded second", "10:00:05.000", "", "10:00:06.000"},
		{"the change this executor saw", "10:00:05.000", "10:00:05.300", "10:00:05.400"},
		{"seen late in the second: the second's end is closer", "10:00:05.000", "10:00:05.900", "10:00:06.000"},
		{"a later change than the one seen", "10:00:07.000", "10:00:05.300", "10:00:08.000"},
		{"seen just before the recorded second began", "10:00:06.000", "10:00:05.950", "10:00:06.050"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ready time.Time
			if tt.ready != "" {
				ready = at(tt.ready)
			}
			if got := lastEndpointChange(at(tt.recorded), ready); !got.Equal(at(tt.want)) {
				t.Errorf("lastEndpointChange = %s, want %s", got.Format("15:04:05.000"), tt.want)
			}
		})
	}
}
