package insttest

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
)

// Ack is one acknowledged commit.
type Ack struct {
	ID int64
	At time.Time
}

// Writer inserts rows one at a time through a multi-host DSN with
// target_session_attrs=read-write and records every acknowledged commit.
// On any error it drops the connection and reconnects at once (1 ms apart).
type Writer struct {
	dsn    string
	cancel context.CancelFunc
	done   chan struct{}

	mu     sync.Mutex
	acks   []Ack
	errors int
	failed []Failure
	next   int64
}

// Failure is one failed connect or insert.
type Failure struct {
	At  time.Time
	Err string
}

// CreateProbeTable creates the table the writer inserts into.
func CreateProbeTable(ctx context.Context, dsn string) error {
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer c.Close(ctx)
	_, err = c.Exec(ctx, `CREATE TABLE IF NOT EXISTS probe (id bigint PRIMARY KEY, at timestamptz NOT NULL DEFAULT now())`)
	return err
}

// StartWriter starts the write loop; ids continue after start.
func StartWriter(dsn string, start int64) *Writer {
	ctx, cancel := context.WithCancel(context.Background())
	w := &Writer{dsn: dsn, cancel: cancel, done: make(chan struct{}), next: start}
	go w.loop(ctx)
	return w
}

func (w *Writer) loop(ctx context.Context) {
	defer close(w.done)
	var conn *pgx.Conn
	defer func() {
		if conn != nil {
			conn.Close(context.Background())
		}
	}()
	for ctx.Err() == nil {
		if conn == nil {
			cctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			c, err := pgx.Connect(cctx, w.dsn)
			cancel()
			if err != nil {
				w.fail(err)
				sleep(ctx, time.Millisecond)
				continue
			}
			conn = c
		}
		w.mu.Lock()
		id := w.next
		w.next++
		w.mu.Unlock()
		qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		_, err := conn.Exec(qctx, `INSERT INTO probe (id) VALUES ($1)`, id)
		cancel()
		if err != nil {
			w.fail(err)
			conn.Close(context.Background())
			conn = nil
			continue
		}
		w.mu.Lock()
		w.acks = append(w.acks, Ack{ID: id, At: time.Now()})
		w.mu.Unlock()
	}
}

func (w *Writer) fail(err error) {
	w.mu.Lock()
	w.errors++
	if len(w.failed) < 100_000 {
		w.failed = append(w.failed, Failure{At: time.Now(), Err: err.Error()})
	}
	w.mu.Unlock()
}

// Failures returns the failures within [from, to].
func (w *Writer) Failures(from, to time.Time) []Failure {
	w.mu.Lock()
	defer w.mu.Unlock()
	var out []Failure
	for _, f := range w.failed {
		if !f.At.Before(from) && !f.At.After(to) {
			out = append(out, f)
		}
	}
	return out
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// Acks returns a copy of the acknowledged commits so far.
func (w *Writer) Acks() []Ack {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]Ack(nil), w.acks...)
}

// Count is the number of acknowledged commits so far.
func (w *Writer) Count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.acks)
}

// Stop ends the loop and returns every acknowledged commit.
func (w *Writer) Stop() []Ack {
	w.cancel()
	<-w.done
	return w.Acks()
}

// WaitAcks waits until n more commits than before were acknowledged.
func (w *Writer) WaitAcks(n int, timeout time.Duration) error {
	start := w.Count()
	deadline := time.Now().Add(timeout)
	for w.Count() < start+n {
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d of %d commits acknowledged within %s", w.Count()-start, n, timeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return nil
}

// MaxGap is the longest time between consecutive acknowledged commits
// within [from, to]: the write unavailability of an event in that window.
func MaxGap(acks []Ack, from, to time.Time) time.Duration {
	g, _, _ := GapBounds(acks, from, to)
	return g
}

// GapBounds is MaxGap with the two acknowledgements around the gap.
func GapBounds(acks []Ack, from, to time.Time) (time.Duration, time.Time, time.Time) {
	var best time.Duration
	var start, end time.Time
	var prev time.Time
	for _, a := range acks {
		if a.At.Before(from) {
			prev = a.At
			continue
		}
		if !prev.IsZero() {
			if g := a.At.Sub(prev); g > best {
				best, start, end = g, prev, a.At
			}
		}
		prev = a.At
		if a.At.After(to) {
			break
		}
	}
	return best, start, end
}

// Missing returns the acknowledged ids absent from the server at dsn.
func Missing(ctx context.Context, dsn string, acks []Ack) ([]int64, error) {
	c, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return nil, err
	}
	defer c.Close(ctx)
	rows, err := c.Query(ctx, `SELECT id FROM probe`)
	if err != nil {
		return nil, err
	}
	have := map[int64]bool{}
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		have[id] = true
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	var missing []int64
	for _, a := range acks {
		if !have[a.ID] {
			missing = append(missing, a.ID)
		}
	}
	sort.Slice(missing, func(i, j int) bool { return missing[i] < missing[j] })
	return missing, nil
}

// Success is one commit an instance acknowledged: sent at Sent, answered
// at Ack (the commit happened in between).
type Success struct {
	Instance  int
	Sent, Ack time.Time
}

// DirectWriters write to every instance directly (not through a
// multi-host DSN), each on its own session, every interval, and record
// which instance acknowledged each commit: a record of who accepted writes
// when, whatever the instances believe. Ids are firstID + instance × 10^7
// + n.
type DirectWriters struct {
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu   sync.Mutex
	acks []Success
}

// StartDirectWriters starts one writer per instance of c.
func StartDirectWriters(c *Cluster, firstID int64, interval time.Duration) *DirectWriters {
	ctx, cancel := context.WithCancel(context.Background())
	d := &DirectWriters{cancel: cancel}
	for i := range c.Instances {
		dsn := c.InstanceDSN(i, "app", AppPassword, "app")
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			d.loop(ctx, i, dsn, firstID+int64(i)*10_000_000, interval)
		}()
	}
	return d
}

func (d *DirectWriters) loop(ctx context.Context, i int, dsn string, id int64, interval time.Duration) {
	var conn *pgx.Conn
	defer func() {
		if conn != nil {
			conn.Close(context.Background())
		}
	}()
	for ctx.Err() == nil {
		if conn == nil {
			cctx, cancel := context.WithTimeout(ctx, time.Second)
			c, err := pgx.Connect(cctx, dsn)
			cancel()
			if err != nil {
				sleep(ctx, interval)
				continue
			}
			conn = c
		}
		sent := time.Now()
		qctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		_, err := conn.Exec(qctx, `INSERT INTO probe (id) VALUES ($1)`, id)
		cancel()
		id++
		if err == nil {
			d.mu.Lock()
			d.acks = append(d.acks, Success{Instance: i, Sent: sent, Ack: time.Now()})
			d.mu.Unlock()
		} else if conn.IsClosed() || !strings.Contains(err.Error(), "read-only") {
			conn.Close(context.Background())
			conn = nil
		}
		sleep(ctx, interval)
	}
}

// Stop ends the writers and returns every acknowledged commit, in the
// order of acknowledgement.
func (d *DirectWriters) Stop() []Success {
	d.cancel()
	d.wg.Wait()
	d.mu.Lock()
	defer d.mu.Unlock()
	out := append([]Success(nil), d.acks...)
	sort.Slice(out, func(a, b int) bool { return out[a].Ack.Before(out[b].Ack) })
	return out
}

// Handover is a moment the accepting instance changed: From's last
// commit answered at Last, To's first one sent at First.
type Handover struct {
	From, To    int
	Last, First time.Time
}

// Handovers walks commits in acknowledgement order and returns every
// change of the instance that accepted them, and an error when two
// instances accepted writes at the same moment: the next one's first
// commit was sent before the previous one's last was answered.
// Two instances writable together would also show as many handovers
// (their commits interleave): the caller compares the count with the
// failovers it caused.
func Handovers(acks []Success) ([]Handover, error) {
	var out []Handover
	for k := 1; k < len(acks); k++ {
		prev, cur := acks[k-1], acks[k]
		if cur.Instance == prev.Instance {
			continue
		}
		h := Handover{From: prev.Instance, To: cur.Instance, Last: prev.Ack, First: cur.Sent}
		out = append(out, h)
		if !cur.Sent.After(prev.Ack) {
			return out, fmt.Errorf("instances %d and %d both accepted writes: %d answered at %s, %d's commit was sent at %s",
				prev.Instance, cur.Instance, prev.Instance, prev.Ack.Format(time.RFC3339Nano), cur.Instance, cur.Sent.Format(time.RFC3339Nano))
		}
	}
	return out, nil
}
