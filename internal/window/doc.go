// Package window owns maintenance windows: the grammar of the text a
// Cluster file's pgsync.io/maintenance-window annotation (or a daemon
// default) holds, and when such a schedule is open. It is pure: the time is
// always passed in, never read from a clock.
//
// Grammar. A schedule is one or more windows, separated by ";" or newlines,
// or given as several strings to Parse. A window is three fields:
//
//	DAYS HH:MM-HH:MM ZONE
//
//	Sat 02:00-04:00 Europe/Rome
//	Mon-Fri 22:00-02:00 UTC
//	daily 01:00-03:00 America/New_York
//	Sat,Sun 00:00-24:00 UTC
//
// DAYS is "daily" or a comma-separated list of days (Mon, Tue, Wed, Thu,
// Fri, Sat, Sun, in any case) and day ranges (Mon-Fri; a range may wrap,
// Fri-Mon). The times are 24-hour wall-clock times; the end may be 24:00.
// An end before the start crosses midnight: the window belongs to the day it
// starts on, so "Mon-Fri 22:00-02:00" last opens on Friday and closes on
// Saturday at 02:00. ZONE is a name of the IANA time zone database (UTC,
// Europe/Rome), read with time.LoadLocation; the program that parses should
// import time/tzdata so that zones do not depend on the machine.
//
// Daylight saving time. Times are wall-clock times in the window's zone,
// so "daily 01:00-03:00 Europe/Rome" opens at 01:00 in winter and in
// summer alike: a window opens the first moment the wall clock reaches its
// start on one of its days and closes the first moment after that it
// reaches its end. On the days the clocks change, that means:
//
//   - a time the clocks skip (02:30 on the night they jump from 02:00 to
//     03:00) is reached at the jump: "02:30-04:00" opens at 03:00 and
//     lasts an hour, "01:00-02:30" closes at 03:00, an hour after opening;
//   - a time the clocks repeat (on the night they go back from 03:00 to
//     02:00) is reached at its first occurrence: "02:00-04:00" lasts three
//     hours that night, "01:00-02:30" an hour and a half, as usual;
//   - a window lying entirely in skipped time ("02:00-03:00" that night)
//     would be empty, so it opens at the jump and lasts as long as usual,
//     rather than vanish for a week.
//
// It is a leaf that internal/cluster (validation) and internal/fleet (the
// wave order) build on: it must not import `pgsync/...` or
// `k8s.io/client-go/...`.
package window
