package insttest

import (
	"io"
	"net"
	"sync"
	"testing"
)

// apiGate is a TCP relay between the managers and the kube-apiserver that
// can be cut: while cut it keeps every connection open and accepts new
// ones but forwards nothing in either direction, like a partitioned
// network where packets are dropped (requests hang; nothing is refused).
// Restoring it forwards what was held.
type apiGate struct {
	ln       net.Listener
	upstream string

	mu   sync.Mutex
	cond *sync.Cond
	cut  bool
}

func newAPIGate(t testing.TB, upstream string) *apiGate {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &apiGate{ln: ln, upstream: upstream}
	g.cond = sync.NewCond(&g.mu)
	go g.serve()
	t.Cleanup(func() {
		g.set(false)
		ln.Close()
	})
	return g
}

// Addr is host:port of the relay.
func (g *apiGate) Addr() string { return g.ln.Addr().String() }

func (g *apiGate) set(cut bool) {
	g.mu.Lock()
	g.cut = cut
	g.mu.Unlock()
	g.cond.Broadcast()
}

func (g *apiGate) waitOpen() {
	g.mu.Lock()
	for g.cut {
		g.cond.Wait()
	}
	g.mu.Unlock()
}

func (g *apiGate) serve() {
	for {
		c, err := g.ln.Accept()
		if err != nil {
			return
		}
		go g.relay(c)
	}
}

func (g *apiGate) relay(c net.Conn) {
	defer c.Close()
	g.waitOpen()
	u, err := net.Dial("tcp", g.upstream)
	if err != nil {
		return
	}
	defer u.Close()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		defer func() { done <- struct{}{} }()
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				g.waitOpen()
				if _, werr := dst.Write(buf[:n]); werr != nil {
					return
				}
			}
			if err != nil {
				if err != io.EOF {
					return
				}
				if tc, ok := dst.(*net.TCPConn); ok {
					_ = tc.CloseWrite()
				}
				return
			}
		}
	}
	go pipe(u, c)
	go pipe(c, u)
	<-done
	<-done
}
