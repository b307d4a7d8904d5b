package window

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Schedule is a set of maintenance windows (see the package comment for
// the grammar). The zero Schedule has none: it is never open and Next finds
// nothing; a caller for which "no windows" means "no restriction" says so
// itself.
type Schedule struct {
	windows []entry
}

// entry is one window of a Schedule.
type entry struct {
	days [7]bool // by time.Weekday
	// start and end are minutes after midnight; an end before the start
	// crosses midnight, and an end of 24*60 is the next midnight.
	start, end int
	loc        *time.Location
	text       string
}

const (
	minutesPerDay = 24 * 60
	// lookAhead bounds Next: every window of a valid schedule opens at least
	// once a week, so two weeks always find the next opening.
	lookAhead = 15
)

// form is what every window looks like, for error messages.
const form = `DAYS HH:MM-HH:MM ZONE (e.g. "Sat 02:00-04:00 Europe/Rome" or "Mon-Fri 22:00-02:00 UTC")`

// Parse reads a schedule from one or more texts, each holding one or more
// windows separated by ";" or newlines. Empty entries (a trailing ";") are
// ignored, but at least one window is required. The error names every
// window that is wrong, what is wrong with it and what is allowed.
func Parse(texts ...string) (Schedule, error) {
	var (
		s    Schedule
		errs []string
	)
	for _, text := range texts {
		for item := range strings.FieldsFuncSeq(text, func(r rune) bool { return r == ';' || r == '\n' }) {
			item = strings.TrimSpace(item)
			if item == "" {
				continue
			}
			w, err := parseWindow(item)
			if err != nil {
				errs = append(errs, fmt.Sprintf("window %q: %v", item, err))
				continue
			}
			s.windows = append(s.windows, w)
		}
	}
	if len(errs) > 0 {
		return Schedule{}, errors.New(strings.Join(errs, "; "))
	}
	if len(s.windows) == 0 {
		return Schedule{}, errors.New("no window given: want " + form)
	}
	return s, nil
}

var dayNames = [7]string{"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"}

func parseWindow(text string) (entry, error) {
	fields := strings.Fields(text)
	if len(fields) != 3 {
		return entry{}, fmt.Errorf("want %s, got %d fields", form, len(fields))
	}
	var w entry
	days, err := parseDays(fields[0], &w.days)
	if err != nil {
		return entry{}, err
	}
	from, to, ok := strings.Cut(fields[1], "-")
	if !ok {
		return entry{}, fmt.Errorf("%q is not a time range HH:MM-HH:MM", fields[1])
	}
	if w.start, ok = parseClock(from, false); !ok {
		return entry{}, fmt.Errorf("start %q is not a time HH:MM from 00:00 to 23:59", from)
	}
	if w.end, ok = parseClock(to, true); !ok {
		return entry{}, fmt.Errorf("end %q is not a time HH:MM from 00:00 to 24:00", to)
	}
	if w.start == w.end {
		return entry{}, fmt.Errorf("starts and ends at %s: a window must not be empty (for a whole day write 00:00-24:00)", from)
	}
	if w.loc, err = loadZone(fields[2]); err != nil {
		return entry{}, err
	}
	w.text = days + " " + clock(w.start) + "-" + clock(w.end) + " " + fields[2]
	return w, nil
}

// parseDays reads DAYS into set and returns its canonical spelling.
func parseDays(text string, set *[7]bool) (string, error) {
	if strings.EqualFold(text, "daily") {
		for d := range set {
			set[d] = true
		}
		return "daily", nil
	}
	var canon []string
	for item := range strings.SplitSeq(text, ",") {
		from, to, isRange := strings.Cut(item, "-")
		first, ok := parseDay(from)
		if !ok {
			return "", unknownDay(from)
		}
		last := first
		if isRange {
			if last, ok = parseDay(to); !ok {
				return "", unknownDay(to)
			}
		}
		// A range wraps past Sunday: Fri-Mon is Fri, Sat, Sun, Mon.
		for d := first; ; d = (d + 1) % 7 {
			set[d] = true
			if d == last {
				break
			}
		}
		if isRange {
			canon = append(canon, dayNames[first]+"-"+dayNames[last])
		} else {
			canon = append(canon, dayNames[first])
		}
	}
	return strings.Join(canon, ","), nil
}

func parseDay(s string) (time.Weekday, bool) {
	for d, name := range dayNames {
		if strings.EqualFold(s, name) {
			return time.Weekday(d), true
		}
	}
	return 0, false
}

func unknownDay(s string) error {
	return fmt.Errorf("unknown day %q (allowed: daily, or days Mon, Tue, Wed, Thu, Fri, Sat, Sun, ranges such as Mon-Fri, lists such as Sat,Sun)", s)
}

// parseClock reads HH:MM; 24:00 is allowed only as an end.
func parseClock(s string, end bool) (int, bool) {
	if len(s) != 5 || s[2] != ':' {
		return 0, false
	}
	digits := func(a, b byte) (int, bool) {
		if a < '0' || a > '9' || b < '0' || b > '9' {
			return 0, false
		}
		return int(a-'0')*10 + int(b-'0'), true
	}
	h, okH := digits(s[0], s[1])
	m, okM := digits(s[3], s[4])
	switch {
	case !okH || !okM || m > 59:
		return 0, false
	case h == 24 && m == 0 && end:
		return minutesPerDay, true
	case h > 23:
		return 0, false
	}
	return h*60 + m, true
}

func clock(min int) string { return fmt.Sprintf("%02d:%02d", min/60, min%60) }

func loadZone(name string) (*time.Location, error) {
	if name == "Local" {
		// The zone of whatever machine runs pgsync would make the same file
		// mean different times on a laptop and in the cluster.
		return nil, errors.New(`time zone "Local" is not allowed: name the zone (e.g. UTC or Europe/Rome)`)
	}
	loc, err := time.LoadLocation(name)
	if err != nil {
		return nil, fmt.Errorf("unknown time zone %q (allowed: a name of the IANA time zone database, such as UTC, Europe/Rome or America/New_York)", name)
	}
	return loc, nil
}

// String is the schedule in canonical form, its windows joined by "; ".
func (s Schedule) String() string {
	texts := make([]string, len(s.windows))
	for i, w := range s.windows {
		texts[i] = w.text
	}
	return strings.Join(texts, "; ")
}

// IsZero reports whether s has no windows (the zero Schedule).
func (s Schedule) IsZero() bool { return len(s.windows) == 0 }

// Open reports whether at falls inside one of the windows: start <= at < end.
func (s Schedule) Open(at time.Time) bool {
	for _, w := range s.windows {
		for _, o := range w.occurrences(at, -2, 1) {
			if !at.Before(o.start) && at.Before(o.end) {
				return true
			}
		}
	}
	return false
}

// Next returns the span the schedule is open in at after or, when it is
// closed at after, the next one to open: start <= after < end exactly when
// Open(after). Overlapping and touching windows are one span, so end is
// when the schedule really closes; Next looks 15 days ahead, and a span
// still open then ends there. The times are in the zone of the window that
// opens, and closes, the span. The zero Schedule returns zero times.
func (s Schedule) Next(after time.Time) (start, end time.Time) {
	var all []occurrence
	for _, w := range s.windows {
		for _, o := range w.occurrences(after, -2, lookAhead) {
			if o.end.After(after) {
				all = append(all, o)
			}
		}
	}
	if len(all) == 0 {
		return time.Time{}, time.Time{}
	}
	slices.SortFunc(all, func(a, b occurrence) int { return a.start.Compare(b.start) })
	start, end = all[0].start, all[0].end
	for _, o := range all[1:] {
		if o.start.After(end) {
			break
		}
		if o.end.After(end) {
			end = o.end
		}
	}
	return start, end
}

// occurrence is one opening of a window.
type occurrence struct{ start, end time.Time }

// occurrences returns the window's openings that start on the days from
// `from` to `to` days after at's date in the window's zone.
func (w entry) occurrences(at time.Time, from, to int) []occurrence {
	local := at.In(w.loc)
	y, m, d := local.Date()
	var out []occurrence
	for i := from; i <= to; i++ {
		// Civil-date arithmetic in UTC, where every day has 24 hours.
		day := time.Date(y, m, d+i, 0, 0, 0, 0, time.UTC)
		if !w.days[day.Weekday()] {
			continue
		}
		out = append(out, w.occurrence(day))
	}
	return out
}

// occurrence is the opening of the window that starts on day (a UTC
// midnight standing for a civil date): from the first moment the zone's
// wall clock reaches the start that day to the first moment it reaches the
// end after it.
func (w entry) occurrence(day time.Time) occurrence {
	endDay := day
	if w.end < w.start {
		endDay = day.AddDate(0, 0, 1)
	}
	start := reaches(day, w.start, w.loc)
	end := reaches(endDay, w.end, w.loc)
	if !end.After(start) {
		// Only a window lying entirely in time the clocks skip gets here
		// (02:00-03:00 on the night they jump from 02:00 to 03:00): rather
		// than vanish for a week it opens at the jump and lasts as long as
		// it would have.
		length := w.end - w.start
		if length < 0 {
			length += minutesPerDay
		}
		end = start.Add(time.Duration(length) * time.Minute)
	}
	return occurrence{start: start, end: end}
}

// reaches returns the first moment the wall clock in loc reaches min
// minutes after midnight of day (a UTC midnight standing for a civil date;
// min may be 24*60): for a time shown twice (the clocks go back) its first
// occurrence, for a time never shown (the clocks jump forward over it) the
// jump.
func reaches(day time.Time, min int, loc *time.Location) time.Time {
	// naive is the wall time as if loc were UTC; the instant is naive minus
	// the offset in force then, and that offset is one of those around it.
	naive := day.Add(time.Duration(min) * time.Minute)
	offsets := zoneOffsets(naive, loc)
	var first time.Time
	for _, off := range offsets {
		cand := naive.Add(-off)
		if _, o := cand.In(loc).Zone(); time.Duration(o)*time.Second == off && (first.IsZero() || cand.Before(first)) {
			first = cand
		}
	}
	if !first.IsZero() {
		return first.In(loc)
	}
	// Skipped: find the jump over naive, where the wall clock showed less
	// than naive just before and more right after.
	for _, off := range offsets {
		jump, _ := naive.Add(-off).In(loc).ZoneBounds()
		if jump.IsZero() {
			continue
		}
		_, before := jump.Add(-time.Second).Zone()
		_, after := jump.Zone()
		if !jump.Add(time.Duration(before)*time.Second).After(naive) && naive.Before(jump.Add(time.Duration(after)*time.Second)) {
			return jump
		}
	}
	// Unreachable with the tz database: a time is shown once, twice or is
	// skipped by a jump found above. Go's own reading is the best left.
	return time.Date(naive.Year(), naive.Month(), naive.Day(), naive.Hour(), naive.Minute(), 0, 0, loc)
}

// zoneOffsets returns the UTC offsets loc uses around naive: those of the
// zone periods holding the instants a day and a half either side of it,
// and of the periods next to the one holding naive itself.
func zoneOffsets(naive time.Time, loc *time.Location) []time.Duration {
	var offs []time.Duration
	add := func(t time.Time) {
		_, o := t.In(loc).Zone()
		if d := time.Duration(o) * time.Second; !slices.Contains(offs, d) {
			offs = append(offs, d)
		}
	}
	for _, probe := range []time.Duration{-36 * time.Hour, 0, 36 * time.Hour} {
		add(naive.Add(probe))
	}
	start, end := naive.In(loc).ZoneBounds()
	if !start.IsZero() {
		add(start.Add(-time.Second))
	}
	if !end.IsZero() {
		add(end)
	}
	return offs
}
