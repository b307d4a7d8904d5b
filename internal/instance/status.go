package instance

import (
	"sync"

	"github.com/pgsync/pgsync/internal/podcontract"
)

// Status is what /status serves: the pod contract's document.
type Status = podcontract.Status

// statusBox guards the shared Status.
type statusBox struct {
	mu sync.Mutex
	s  Status
}

func (b *statusBox) update(f func(*Status)) {
	b.mu.Lock()
	f(&b.s)
	b.mu.Unlock()
}

// Get returns a copy.
func (b *statusBox) Get() Status {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.s
	s.PendingRestart = append([]string{}, s.PendingRestart...)
	s.RejectedParameters = append([]string(nil), s.RejectedParameters...)
	return s
}
