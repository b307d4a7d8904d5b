package window_test

import (
	"math/rand/v2"
	"testing"
	"time"

	// The tests read zones the way the pgsync binary does, from the
	// embedded database when the machine has none.
	_ "time/tzdata"

	"github.com/pgsync/pgsync/internal/window"
)

func mustParse(t *testing.T, texts ...string) window.Schedule {
	t.Helper()
	s, err := window.Parse(texts...)
	if err != nil {
		t.Fatalf("Parse(%q): %v", texts, err)
	}
	return s
}

// utc reads an RFC 3339 instant; expectations are written in UTC so that
// they do not lean on the code under test's own reading of zones.
func utc(t *testing.T, s string) time.Time {
	t.Helper()
	v, err := time.Parse(time.RFC3339, s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestParseCanonical(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want string
	}{
		{[]string{"Sat 02:00-04:00 Europe/Rome"}, "Sat 02:00-04:00 Europe/Rome"},
		{[]string{"mon-FRI 22:00-02:00 UTC"}, "Mon-Fri 22:00-02:00 UTC"},
		{[]string{"DAILY 01:00-03:00 America/New_York"}, "daily 01:00-03:00 America/New_York"},
		{[]string{"sat,sun 00:00-24:00 UTC"}, "Sat,Sun 00:00-24:00 UTC"},
		{[]string{"Fri-Mon,Wed 10:00-11:00 UTC"}, "Fri-Mon,Wed 10:00-11:00 UTC"},
		{[]string{"  Sat   02:00-04:00   Europe/Rome ; Sun 03:00-05:00 UTC;"}, "Sat 02:00-04:00 Europe/Rome; Sun 03:00-05:00 UTC"},
		{[]string{"Sat 02:00-04:00 Europe/Rome\nSun 03:00-05:00 UTC\n"}, "Sat 02:00-04:00 Europe/Rome; Sun 03:00-05:00 UTC"},
		{[]string{"Sat 02:00-04:00 Europe/Rome", "Sun 03:00-05:00 UTC; Mon 01:00-02:00 UTC"}, "Sat 02:00-04:00 Europe/Rome; Sun 03:00-05:00 UTC; Mon 01:00-02:00 UTC"},
	} {
		if got := mustParse(t, tc.in...).String(); got != tc.want {
			t.Errorf("Parse(%q).String() = %q, want %q", tc.in, got, tc.want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		in   []string
		want string // the whole error
	}{
		{nil, `no window given: want DAYS HH:MM-HH:MM ZONE (e.g. "Sat 02:00-04:00 Europe/Rome" or "Mon-Fri 22:00-02:00 UTC")`},
		{[]string{" ; \n"}, `no window given: want DAYS HH:MM-HH:MM ZONE (e.g. "Sat 02:00-04:00 Europe/Rome" or "Mon-Fri 22:00-02:00 UTC")`},
		{[]string{"Sat 02:00-04:00"}, `window "Sat 02:00-04:00": want DAYS HH:MM-HH:MM ZONE (e.g. "Sat 02:00-04:00 Europe/Rome" or "Mon-Fri 22:00-02:00 UTC"), got 2 fields`},
		{[]string{"Sat 02:00 - 04:00 UTC"}, `window "Sat 02:00 - 04:00 UTC": want DAYS HH:MM-HH:MM ZONE (e.g. "Sat 02:00-04:00 Europe/Rome" or "Mon-Fri 22:00-02:00 UTC"), got 5 fields`},
		{[]string{"Sta 02:00-04:00 UTC"}, `window "Sta 02:00-04:00 UTC": unknown day "Sta" (allowed: daily, or days Mon, Tue, Wed, Thu, Fri, Sat, Sun, ranges such as Mon-Fri, lists such as Sat,Sun)`},
		{[]string{"Mon-Fry 02:00-04:00 UTC"}, `window "Mon-Fry 02:00-04:00 UTC": unknown day "Fry" (allowed: daily, or days Mon, Tue, Wed, Thu, Fri, Sat, Sun, ranges such as Mon-Fri, lists such as Sat,Sun)`},
		{[]string{"Saturday 02:00-04:00 UTC"}, `window "Saturday 02:00-04:00 UTC": unknown day "Saturday" (allowed: daily, or days Mon, Tue, Wed, Thu, Fri, Sat, Sun, ranges such as Mon-Fri, lists such as Sat,Sun)`},
		{[]string{"Sat, 02:00-04:00 UTC"}, `window "Sat, 02:00-04:00 UTC": unknown day "" (allowed: daily, or days Mon, Tue, Wed, Thu, Fri, Sat, Sun, ranges such as Mon-Fri, lists such as Sat,Sun)`},
		{[]string{"Sat 0200-0400 UTC"}, `window "Sat 0200-0400 UTC": start "0200" is not a time HH:MM from 00:00 to 23:59`},
		{[]string{"Sat 02:00 UTC"}, `window "Sat 02:00 UTC": "02:00" is not a time range HH:MM-HH:MM`},
		{[]string{"Sat 2:00-04:00 UTC"}, `window "Sat 2:00-04:00 UTC": start "2:00" is not a time HH:MM from 00:00 to 23:59`},
		{[]string{"Sat 02:60-04:00 UTC"}, `window "Sat 02:60-04:00 UTC": start "02:60" is not a time HH:MM from 00:00 to 23:59`},
		{[]string{"Sat 24:00-04:00 UTC"}, `window "Sat 24:00-04:00 UTC": start "24:00" is not a time HH:MM from 00:00 to 23:59`},
		{[]string{"Sat 02:00-24:30 UTC"}, `window "Sat 02:00-24:30 UTC": end "24:30" is not a time HH:MM from 00:00 to 24:00`},
		{[]string{"Sat 02:00-4pm UTC"}, `window "Sat 02:00-4pm UTC": end "4pm" is not a time HH:MM from 00:00 to 24:00`},
		{[]string{"Sat 02:00-02:00 UTC"}, `window "Sat 02:00-02:00 UTC": starts and ends at 02:00: a window must not be empty (for a whole day write 00:00-24:00)`},
		{[]string{"Sat 02:00-04:00 Europe/Roma"}, `window "Sat 02:00-04:00 Europe/Roma": unknown time zone "Europe/Roma" (allowed: a name of the IANA time zone database, such as UTC, Europe/Rome or America/New_York)`},
		{[]string{"Sat 02:00-04:00 +01:00"}, `window "Sat 02:00-04:00 +01:00": unknown time zone "+01:00" (allowed: a name of the IANA time zone database, such as UTC, Europe/Rome or America/New_York)`},
		{[]string{"Sat 02:00-04:00 Local"}, `window "Sat 02:00-04:00 Local": time zone "Local" is not allowed: name the zone (e.g. UTC or Europe/Rome)`},
		// Every bad window is named, the good ones are not.
		{[]string{"Sat 02:00-04:00 UTC; Sun 5:00-06:00 UTC", "Mon 01:00-02:00 Mars/Olympus"},
			`window "Sun 5:00-06:00 UTC": start "5:00" is not a time HH:MM from 00:00 to 23:59; window "Mon 01:00-02:00 Mars/Olympus": unknown time zone "Mars/Olympus" (allowed: a name of the IANA time zone database, such as UTC, Europe/Rome or America/New_York)`},
	} {
		s, err := window.Parse(tc.in...)
		if err == nil {
			t.Errorf("Parse(%q) = %q, want error %q", tc.in, s, tc.want)
			continue
		}
		if err.Error() != tc.want {
			t.Errorf("Parse(%q) error:\n got %s\nwant %s", tc.in, err, tc.want)
		}
	}
}

// TestNext pins the span Next returns, around daylight saving changes
// (Europe/Rome: 2026-03-29 02:00 CET → 03:00 CEST, 2026-10-25 03:00 CEST →
// 02:00 CET; America/New_York: 2026-03-08 02:00 EST → 03:00 EDT,
// 2026-11-01 02:00 EDT → 01:00 EST), across midnight, over day ranges and
// where windows overlap.
func TestNext(t *testing.T) {
	for _, tc := range []struct {
		name, schedule, after string
		start, end            string // UTC
	}{
		{"winter Sunday in Rome", "Sun 02:00-04:00 Europe/Rome", "2026-03-21T12:00:00Z", "2026-03-22T01:00:00Z", "2026-03-22T03:00:00Z"},
		{"Rome, clocks jump over the start: opens at the jump, closes at 04:00 CEST", "Sun 02:00-04:00 Europe/Rome", "2026-03-28T12:00:00Z", "2026-03-29T01:00:00Z", "2026-03-29T02:00:00Z"},
		{"summer Sunday in Rome: same wall clock, new offset", "Sun 02:00-04:00 Europe/Rome", "2026-04-04T12:00:00Z", "2026-04-05T00:00:00Z", "2026-04-05T02:00:00Z"},
		{"Rome, clocks go back: 02:00 CEST (first) to 04:00 CET, three hours", "Sun 02:00-04:00 Europe/Rome", "2026-10-24T12:00:00Z", "2026-10-25T00:00:00Z", "2026-10-25T03:00:00Z"},
		{"Rome, window inside the skipped hour still happens, as long as usual", "daily 02:15-02:45 Europe/Rome", "2026-03-28T23:00:00Z", "2026-03-29T01:00:00Z", "2026-03-29T01:30:00Z"},
		{"Rome, window exactly the skipped hour", "daily 02:00-03:00 Europe/Rome", "2026-03-28T23:00:00Z", "2026-03-29T01:00:00Z", "2026-03-29T02:00:00Z"},
		{"Rome, start skipped, end after the jump", "daily 02:30-03:30 Europe/Rome", "2026-03-28T23:00:00Z", "2026-03-29T01:00:00Z", "2026-03-29T01:30:00Z"},
		{"Rome, end skipped: closes at the jump", "daily 01:00-02:30 Europe/Rome", "2026-03-28T23:00:00Z", "2026-03-29T00:00:00Z", "2026-03-29T01:00:00Z"},
		{"Rome, end in the repeated hour: its first occurrence", "daily 01:00-02:30 Europe/Rome", "2026-10-24T22:00:00Z", "2026-10-24T23:00:00Z", "2026-10-25T00:30:00Z"},
		{"Rome, the repeated hour: both passes", "daily 02:00-03:00 Europe/Rome", "2026-10-24T22:00:00Z", "2026-10-25T00:00:00Z", "2026-10-25T02:00:00Z"},
		{"New York, ordinary winter day", "daily 01:00-03:00 America/New_York", "2026-03-07T00:00:00Z", "2026-03-07T06:00:00Z", "2026-03-07T08:00:00Z"},
		{"New York, spring forward: 01:00 EST to 03:00 EDT, one hour", "daily 01:00-03:00 America/New_York", "2026-03-08T00:00:00Z", "2026-03-08T06:00:00Z", "2026-03-08T07:00:00Z"},
		{"New York, summer day", "daily 01:00-03:00 America/New_York", "2026-07-01T00:00:00Z", "2026-07-01T05:00:00Z", "2026-07-01T07:00:00Z"},
		{"New York, fall back: 01:00 EDT (first) to 03:00 EST, three hours", "daily 01:00-03:00 America/New_York", "2026-11-01T00:00:00Z", "2026-11-01T05:00:00Z", "2026-11-01T08:00:00Z"},
		{"New York, across midnight into the fall-back night", "daily 23:00-01:30 America/New_York", "2026-10-31T12:00:00Z", "2026-11-01T03:00:00Z", "2026-11-01T05:30:00Z"},
		{"New York, across midnight into spring forward, end skipped", "Sat 23:00-02:30 America/New_York", "2026-03-07T12:00:00Z", "2026-03-08T04:00:00Z", "2026-03-08T07:00:00Z"},
		{"across midnight: Friday's window ends on Saturday", "Mon-Fri 22:00-02:00 UTC", "2026-12-04T21:00:00Z", "2026-12-04T22:00:00Z", "2026-12-05T02:00:00Z"},
		{"inside: the span in force, start before after", "Mon-Fri 22:00-02:00 UTC", "2026-12-05T01:00:00Z", "2026-12-04T22:00:00Z", "2026-12-05T02:00:00Z"},
		{"at the end: closed, next is Monday night", "Mon-Fri 22:00-02:00 UTC", "2026-12-05T02:00:00Z", "2026-12-07T22:00:00Z", "2026-12-08T02:00:00Z"},
		{"at the start: open", "Mon-Fri 22:00-02:00 UTC", "2026-12-07T22:00:00Z", "2026-12-07T22:00:00Z", "2026-12-08T02:00:00Z"},
		{"the brief's example: Saturday in Rome in winter", "Sat 02:00-04:00 Europe/Rome", "2026-12-01T12:00:00Z", "2026-12-05T01:00:00Z", "2026-12-05T03:00:00Z"},
		{"a range that wraps past Sunday", "Fri-Mon 10:00-11:00 UTC", "2026-12-07T12:00:00Z", "2026-12-11T10:00:00Z", "2026-12-11T11:00:00Z"},
		{"a list of days", "Tue,Thu 12:00-13:00 UTC", "2026-12-08T13:00:00Z", "2026-12-10T12:00:00Z", "2026-12-10T13:00:00Z"},
		{"overlapping windows are one span", "daily 22:00-02:00 UTC; Sat 01:00-05:00 UTC", "2026-12-04T23:00:00Z", "2026-12-04T22:00:00Z", "2026-12-05T05:00:00Z"},
		{"touching windows are one span", "Sat 00:00-24:00 UTC; Sun 00:00-06:00 UTC", "2026-12-05T10:00:00Z", "2026-12-05T00:00:00Z", "2026-12-06T06:00:00Z"},
		{"several zones: the earliest opening wins", "Sat 02:00-04:00 America/New_York; Sat 02:00-04:00 Europe/Rome", "2026-12-04T12:00:00Z", "2026-12-05T01:00:00Z", "2026-12-05T03:00:00Z"},
		{"an ending at 24:00", "Sun 20:00-24:00 UTC", "2026-12-01T00:00:00Z", "2026-12-06T20:00:00Z", "2026-12-07T00:00:00Z"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := mustParse(t, tc.schedule)
			after := utc(t, tc.after)
			start, end := s.Next(after)
			if !start.Equal(utc(t, tc.start)) || !end.Equal(utc(t, tc.end)) {
				t.Errorf("%q.Next(%s) = %s .. %s, want %s .. %s", tc.schedule, tc.after,
					start.UTC().Format(time.RFC3339), end.UTC().Format(time.RFC3339), tc.start, tc.end)
			}
			if got, want := s.Open(after), !start.After(after); got != want {
				t.Errorf("Open(%s) = %v, want %v (Next gave %s .. %s)", tc.after, got, want, start, end)
			}
		})
	}
}

func TestNextIsInTheWindowsZone(t *testing.T) {
	s := mustParse(t, "Sat 02:00-04:00 Europe/Rome")
	start, _ := s.Next(utc(t, "2026-12-01T12:00:00Z"))
	if got := start.Format("2006-01-02T15:04Z07:00"); got != "2026-12-05T02:00+01:00" {
		t.Errorf("start = %s, want 2026-12-05T02:00+01:00", got)
	}
}

func TestOpen(t *testing.T) {
	for _, tc := range []struct {
		schedule string
		at       string // UTC
		want     bool
	}{
		{"Mon-Fri 22:00-02:00 UTC", "2026-12-04T23:30:00Z", true},  // Fri night
		{"Mon-Fri 22:00-02:00 UTC", "2026-12-05T01:59:59Z", true},  // Sat, before 02:00
		{"Mon-Fri 22:00-02:00 UTC", "2026-12-05T02:00:00Z", false}, // the end is excluded
		{"Mon-Fri 22:00-02:00 UTC", "2026-12-05T22:30:00Z", false}, // Sat night: no window
		{"Mon-Fri 22:00-02:00 UTC", "2026-12-07T00:30:00Z", false}, // Mon morning: Sunday has none
		{"Mon-Fri 22:00-02:00 UTC", "2026-12-07T22:00:00Z", true},  // the start is included
		{"Mon-Fri 22:00-02:00 UTC", "2026-12-08T01:00:00Z", true},
		{"Fri-Mon 10:00-11:00 UTC", "2026-12-06T10:30:00Z", true}, // Sun
		{"Fri-Mon 10:00-11:00 UTC", "2026-12-08T10:30:00Z", false},
		{"Sun 02:00-04:00 Europe/Rome", "2026-03-29T00:30:00Z", false},        // 01:30 CET
		{"Sun 02:00-04:00 Europe/Rome", "2026-03-29T01:00:00Z", true},         // 03:00 CEST, the jump
		{"Sun 02:00-04:00 Europe/Rome", "2026-03-29T02:00:00Z", false},        // 04:00 CEST
		{"Sun 02:00-04:00 Europe/Rome", "2026-10-25T02:30:00Z", true},         // 03:30 CET, the third hour
		{"daily 01:00-03:00 America/New_York", "2026-03-08T06:59:00Z", true},  // 01:59 EST
		{"daily 01:00-03:00 America/New_York", "2026-03-08T07:00:00Z", false}, // 03:00 EDT
		{"daily 01:00-03:00 America/New_York", "2026-11-01T07:30:00Z", true},  // 02:30 EST
		{"daily 01:00-03:00 America/New_York", "2026-11-01T08:00:00Z", false}, // 03:00 EST
	} {
		if got := mustParse(t, tc.schedule).Open(utc(t, tc.at)); got != tc.want {
			t.Errorf("%q.Open(%s) = %v, want %v", tc.schedule, tc.at, got, tc.want)
		}
	}
}

func TestZeroSchedule(t *testing.T) {
	var s window.Schedule
	at := utc(t, "2026-12-05T02:00:00Z")
	if !s.IsZero() || s.Open(at) || s.String() != "" {
		t.Errorf("zero schedule: IsZero %v, Open %v, String %q", s.IsZero(), s.Open(at), s)
	}
	if start, end := s.Next(at); !start.IsZero() || !end.IsZero() {
		t.Errorf("zero schedule: Next = %s, %s", start, end)
	}
	if mustParse(t, "daily 01:00-02:00 UTC").IsZero() {
		t.Error("a parsed schedule is zero")
	}
}

// TestOpenAgreesWithNext holds Open and Next to each other over a year of
// random instants (every DST change of 2026 included) and schedules of
// every shape: Next's span covers the instant exactly when Open says so; a
// closed schedule stays closed until the start Next gives, opens then and
// is closed again at the end.
func TestOpenAgreesWithNext(t *testing.T) {
	schedules := []string{
		"Sun 02:00-04:00 Europe/Rome",
		"daily 02:15-02:45 Europe/Rome",
		"daily 01:00-03:00 America/New_York",
		"Mon-Fri 22:00-02:00 UTC",
		"Fri-Mon 23:30-00:30 America/New_York; Wed 02:00-03:00 Europe/Rome",
		"daily 22:00-02:00 UTC; Sat 01:00-05:00 UTC",
		"Sat,Sun 00:00-24:00 Australia/Lord_Howe", // a half-hour DST shift
	}
	rng := rand.New(rand.NewPCG(1, 2))
	year := utc(t, "2026-01-01T00:00:00Z")
	for _, text := range schedules {
		s := mustParse(t, text)
		for range 2000 {
			at := year.Add(time.Duration(rng.Int64N(int64(366 * 24 * time.Hour))))
			start, end := s.Next(at)
			if !end.After(start) || !end.After(at) {
				t.Fatalf("%q.Next(%s) = %s .. %s: not a span ending after it", text, at, start, end)
			}
			open := s.Open(at)
			if open != !start.After(at) {
				t.Fatalf("%q at %s: Open = %v but Next = %s .. %s", text, at, open, start, end)
			}
			if !s.Open(start) || s.Open(end) {
				t.Fatalf("%q: Next(%s) = %s .. %s, but Open(start) = %v, Open(end) = %v", text, at, start, end, s.Open(start), s.Open(end))
			}
			if before := start.Add(-time.Second); !open && !before.Before(at) && s.Open(before) {
				t.Fatalf("%q: closed at %s, yet open at %s before the start %s Next gave", text, at, before, start)
			}
		}
	}
}
