package peer

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"time"
)

// Transports a connection runs over (conn.transport, PeerStat.Transport).
const (
	TransportTCP = "tcp"
	TransportUTP = "utp"
)

const (
	// utpConnectTimeout is how long a dial waits for uTP before it tries
	// TCP. libutp resends its SYN after 3 s, so this leaves room for one
	// lost SYN on a path of up to a second's round trip, and costs a peer
	// without uTP (or behind a firewall that drops UDP) one wait, which
	// noUTPFor then spares its next dials.
	utpConnectTimeout = 4 * time.Second
	// utpHeadStart is uTP's lead before TCP is dialled beside it: well
	// above a LAN's or most of the Internet's round trip, in which uTP
	// connects when the peer has it, and far below utpConnectTimeout,
	// which a peer without uTP would otherwise cost every first dial.
	utpHeadStart = 500 * time.Millisecond
	// noUTPFor is how long an address where uTP failed and TCP worked is
	// dialled over TCP alone: a peer rarely turns uTP on while it runs.
	noUTPFor = time.Hour
	// maxNoUTP bounds the addresses remembered as TCP only; when it is
	// full the oldest goes. It is the candidate list's bound, so every
	// candidate can be remembered.
	maxNoUTP = maxKnownAddrs
)

// transportOf is the transport of a peer connection: uTP runs over UDP,
// so its connections have UDP addresses.
func transportOf(nc net.Conn) string {
	if _, ok := nc.RemoteAddr().(*net.UDPAddr); ok {
		return TransportUTP
	}
	return TransportTCP
}

// noUTP remembers the addresses where uTP failed and TCP worked, for
// noUTPFor, at most maxNoUTP.
type noUTP struct{ recentAddrs }

func (n *noUTP) has(a netip.AddrPort, now time.Time) bool {
	return n.recentAddrs.has(a, now, noUTPFor)
}

func (n *noUTP) add(a netip.AddrPort, now time.Time) { n.recentAddrs.add(a, now, maxNoUTP) }

// connect opens the connection of a dial: over uTP first when we have it,
// as libtorrent prefers it, and over TCP beside it once uTP has had
// utpHeadStart without connecting (or has failed); the first to connect is
// the dial's, and the other is cancelled, or closed unused should it
// connect too, before a byte of the protocol crosses it, so a peer never
// gets two connections from one dial. A peer without uTP costs
// utpHeadStart, not utpConnectTimeout: libutp does not hear the ICMP
// "port unreachable" that says nobody listens, and a SYN to a port where
// a DHT listens is simply ignored. An address where TCP won is dialled
// over TCP alone for noUTPFor.
func (t *Torrent) connect(ctx context.Context, a netip.AddrPort) (net.Conn, error) {
	if t.cfg.UTPDial == nil || t.noUTP.has(a, time.Now()) {
		return t.cfg.Dial(ctx, a)
	}
	type result struct {
		nc  net.Conn
		err error
		utp bool
	}
	results := make(chan result, 2)
	uctx, ucancel := context.WithTimeout(ctx, utpConnectTimeout)
	defer ucancel()
	tctx, tcancel := context.WithCancel(ctx)
	defer tcancel()
	go func() {
		nc, err := t.cfg.UTPDial(uctx, a)
		results <- result{nc, err, true}
	}()
	pending, tcpStarted := 1, false
	startTCP := func() {
		tcpStarted = true
		pending++
		go func() {
			nc, err := t.cfg.Dial(tctx, a)
			results <- result{nc, err, false}
		}()
	}
	headStart := time.NewTimer(utpHeadStart)
	defer headStart.Stop()
	var uerr, terr error
	for pending > 0 {
		select {
		case <-headStart.C:
			if !tcpStarted {
				startTCP()
			}
		case r := <-results:
			pending--
			if r.err == nil {
				if pending > 0 {
					ucancel()
					tcancel()
					go func() { // the loser, should it connect after all
						if l := <-results; l.nc != nil {
							l.nc.Close()
						}
					}()
				}
				if !r.utp {
					t.noUTP.add(a, time.Now())
				}
				return r.nc, nil
			}
			if r.utp {
				uerr = r.err
				if !tcpStarted && ctx.Err() == nil {
					startTCP()
				}
			} else {
				terr = r.err
			}
		}
	}
	return nil, errors.Join(fmt.Errorf("uTP: %w", uerr), terr)
}

// connectTimeout bounds a dial's connect and handshake together: a
// fallback to TCP comes after utpConnectTimeout.
func (t *Torrent) connectTimeout() time.Duration {
	if t.cfg.UTPDial == nil {
		return t.handshakeTime()
	}
	return t.handshakeTime() + utpConnectTimeout
}

// handshakeTime bounds an incoming connection's sniffing, MSE and
// handshake together, and an outgoing one's with its connect.
func (t *Torrent) handshakeTime() time.Duration {
	return cmp.Or(t.cfg.hsTimeout, handshakeTimeout)
}

// countTransport counts a connection that joined the peers.
func (t *Torrent) countTransport(c *conn) {
	if c.transport == TransportUTP {
		t.stats.utpConns++
	} else {
		t.stats.tcpConns++
	}
}

// handshakesOf is the budget of pending incoming handshakes nc takes a
// place in. uTP has its own: a uTP SYN may come from any address, spoofed
// included, and the connection it opens then waits for a handshake that
// never comes, for handshakeTimeout. A flood of them can take every
// place of its budget; with one budget it would shut out incoming TCP
// peers too.
func (t *Torrent) handshakesOf(nc net.Conn) *handshakes {
	if transportOf(nc) == TransportUTP {
		return &t.hsUTP
	}
	return &t.hs
}
