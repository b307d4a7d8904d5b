package instance

import (
	"context"
	"errors"
	"net"
	"strconv"
	"time"

	pc "github.com/pgsync/pgsync/internal/podcontract"
)

// After handing the primary over, this instance keeps postgres down until
// NAME-rw has stopped routing here. The new primary rewrites the -rw
// EndpointSlice in one write, but kube-proxy applies it at its next sync,
// up to its minSyncPeriod (1 s by default) later when another endpoint
// change came just before; restarted as a standby in ~300 ms, this
// instance would meanwhile answer -rw clients "read-only" (DESIGN.md §6,
// hazard). Down, it refuses them, and clients retry until routed to the
// new primary. The check is a TCP connect to NAME-rw from this pod: while
// postgres here is down, a connect that succeeds reached another instance,
// so this node's kube-proxy has moved -rw (other nodes sync on their own
// schedule; pc.RouteHoldMax bounds the wait for them).
const (
	routeHoldMax   = pc.RouteHoldMax
	routeProbeWait = 200 * time.Millisecond
)

// routeAnswer is what one probe of NAME-rw found.
type routeAnswer int

const (
	routeStillHere routeAnswer = iota // the connect failed: -rw may still route here
	routeMoved                        // the connect reached a listening instance
	routeNoService                    // NAME-rw does not resolve: not behind a Service (tests outside Kubernetes)
)

// routeProbe checks where NAME-rw routes.
type routeProbe func(ctx context.Context) routeAnswer

// dialRoute probes NAME-rw.NAMESPACE.svc on the PostgreSQL port.
func dialRoute(cluster, namespace string, port int) routeProbe {
	return dialHost(pc.Names{Cluster: cluster}.RW()+"."+namespace+".svc", port)
}

func dialHost(host string, port int) routeProbe {
	return func(ctx context.Context) routeAnswer {
		ctx, cancel := context.WithTimeout(ctx, routeProbeWait)
		defer cancel()
		addrs, err := net.DefaultResolver.LookupHost(ctx, host)
		var dnsErr *net.DNSError
		if errors.As(err, &dnsErr) && dnsErr.IsNotFound {
			return routeNoService
		}
		if err != nil || len(addrs) == 0 {
			return routeStillHere
		}
		c, err := (&net.Dialer{}).DialContext(ctx, "tcp", net.JoinHostPort(addrs[0], strconv.Itoa(port)))
		if err != nil {
			return routeStillHere
		}
		_ = c.Close()
		return routeMoved
	}
}

// routeHeld says whether postgres must stay down for now (see above); it
// ends the hold for good once -rw has moved, or at routeHoldUntil.
func (m *Manager) routeHeld(ctx context.Context) bool {
	if m.routeHoldUntil.IsZero() {
		return false
	}
	if !m.now().Before(m.routeHoldUntil) || m.probeRoute == nil || m.probeRoute(ctx) != routeStillHere {
		m.log.Info("route hold over", "held", m.now().Sub(m.routeHoldUntil.Add(-routeHoldMax)).String(),
			"timedOut", !m.now().Before(m.routeHoldUntil))
		m.routeHoldUntil = time.Time{}
		return false
	}
	return true
}
