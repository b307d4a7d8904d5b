package instance

import (
	"sync"
	"time"

	"github.com/pgsync/pgsync/internal/podcontract"
)

// Status is what /status serves: the pod contract's document.
type Status = podcontract.Status

// statusBox guards what the loop and the status refresher share: the
// Status, and the record of the configuration last written.
type statusBox struct {
	mu      sync.Mutex
	s       Status
	written configWrite
}

// configWrite records one write of pgsync.conf and pg_hba.conf: which
// config revision it carried and when it was complete on disk.
type configWrite struct {
	gen      uint64 // counts writes, so a refresh can tell one raced it
	revision string
	at       time.Time
	// content identifies the ConfigMap version written; since is when a
	// run of writes of that same version began (writes for other reasons,
	// a new upstream, keep the version).
	content string
	since   time.Time
	// refused are the parameters pgsync left out (it sets them itself).
	refused []string
	// hbaFirst is the line of pg_hba.conf holding hba[0].
	hbaFirst int
	hba      []string
}

func (b *statusBox) update(f func(*Status)) {
	b.mu.Lock()
	f(&b.s)
	b.mu.Unlock()
}

// wrote records a configuration write (the loop's side).
func (b *statusBox) wrote(w configWrite) {
	b.mu.Lock()
	w.gen = b.written.gen + 1
	w.since = w.at
	if b.written.gen > 0 && b.written.content == w.content {
		w.since = b.written.since
	}
	b.written = w
	b.s.RejectedParameters = w.refused
	b.mu.Unlock()
}

// lastWrite returns the configuration last written.
func (b *statusBox) lastWrite() configWrite {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.written
}

// updateWith is update with the configuration last written.
func (b *statusBox) updateWith(f func(*Status, configWrite)) {
	b.mu.Lock()
	f(&b.s, b.written)
	b.mu.Unlock()
}

// Get returns a copy.
func (b *statusBox) Get() Status {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.s
	s.PendingRestart = append([]string{}, s.PendingRestart...)
	s.RejectedParameters = append([]string(nil), s.RejectedParameters...)
	s.RejectedHBA = append([]string(nil), s.RejectedHBA...)
	return s
}
