package tracker

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"strconv"
	"time"
)

// udpExchange is one BEP 15 request and its answer: the packet to send
// for a transaction ID, and the reading of an answer to it.
type udpExchange struct {
	build func(conn uint64, tx uint32) []byte
	parse func(b []byte, tx uint32) error
}

// udpAnnounce and udpScrape run their exchange on a socket connected to
// the tracker, so the kernel drops packets from anyone else; answers
// with another transaction ID are counted and ignored. udpAnnounce makes
// the attempts first to last of BEP 15's schedule.
func (c *Client) udpAnnounce(ctx context.Context, u *url.URL, r Request, first, last int) (Response, error) {
	var resp Response
	var from netip.AddrPort
	err := c.udpDo(ctx, u, &from, first, last, udpExchange{
		build: func(conn uint64, tx uint32) []byte { return appendAnnounce(nil, conn, tx, r) },
		parse: func(b []byte, tx uint32) (err error) {
			resp, err = parseUDPAnnounce(b, tx, from.Addr().Is6())
			return err
		},
	})
	resp.From = from
	return resp, err
}

func (c *Client) udpScrape(ctx context.Context, u *url.URL, hashes [][20]byte) ([]ScrapeResult, error) {
	var out []ScrapeResult
	var from netip.AddrPort
	err := c.udpDo(ctx, u, &from, 0, c.udpAttempts-1, udpExchange{
		build: func(conn uint64, tx uint32) []byte { return appendScrape(nil, conn, tx, hashes) },
		parse: func(b []byte, tx uint32) (err error) {
			out, err = parseUDPScrape(b, tx, len(hashes))
			return err
		},
	})
	return out, err
}

// udpAddrs are the tracker's addresses we may ask (see mayAsk and
// mayAskUDP).
func (c *Client) udpAddrs(ctx context.Context, u *url.URL) ([]netip.AddrPort, error) {
	port, err := strconv.ParseUint(u.Port(), 10, 16)
	if err != nil || port == 0 {
		return nil, fmt.Errorf("%w: port %q", ErrUnsupported, u.Port())
	}
	ips, err := c.resolveHost(ctx, u.Hostname())
	if err != nil {
		return nil, err
	}
	var out []netip.AddrPort
	for _, ip := range ips {
		a := netip.AddrPortFrom(ip, uint16(port))
		if err = c.mayAsk(u, ip); err == nil {
			err = c.mayAskUDP(a)
		}
		if err == nil {
			out = append(out, a)
		}
	}
	if len(out) == 0 {
		return nil, err
	}
	return out, nil
}

// localUDPServices are the ports of the UDP services of our LAN's router
// and hosts that this program itself speaks to: SSDP, NAT-PMP, mDNS.
var localUDPServices = map[uint16]bool{1900: true, 5351: true, 5353: true}

// mayAskUDP adds, for a UDP tracker on a loopback or private address,
// what the path rule cannot (no path is sent over UDP): its port is
// neither a system one (below 1024: DNS, NTP, SNMP...) nor one of
// localUDPServices. A local tracker runs as a user (opentracker's 6969).
func (c *Client) mayAskUDP(a netip.AddrPort) error {
	if c.classify(a.Addr()) != localPublic && (a.Port() < 1024 || localUDPServices[a.Port()]) {
		return fmt.Errorf("%w: UDP tracker %s is on a local address at a service's port", ErrLocal, a)
	}
	return nil
}

// udpDo runs ex against the tracker at u with BEP 15's retries: attempt
// n, for n from first to last, waits udpBase·2^n for its answer. When
// the tracker has an address in each family, an attempt that could not
// reach one (an ICMP error, no route) tries the other at once, and an
// attempt after a timeout begins with the other.
func (c *Client) udpDo(ctx context.Context, u *url.URL, from *netip.AddrPort, first, last int, ex udpExchange) error {
	addrs, err := c.udpAddrs(ctx, u)
	if err != nil {
		return err
	}
	for n := first; n <= last; n++ {
		deadline := time.Now().Add(c.udpBase << n)
		for k := range addrs {
			*from = addrs[(n+k)%len(addrs)]
			err = c.udpAttempt(ctx, *from, deadline, ex)
			var te *Error
			if err == nil || ctx.Err() != nil || errors.Is(err, ErrTimeout) || errors.Is(err, ErrBadAnswer) || errors.As(err, &te) {
				break // an answer, or this attempt's time is spent
			}
		}
		if !errors.Is(err, ErrTimeout) || ctx.Err() != nil {
			return err
		}
	}
	return err
}

// udpAttempt is one attempt of ex at addr, until deadline: a connect
// first unless we hold a connection ID less than
// UDPConnectionIDLifetime old. A refusal of a request made with a held
// ID is often "connection ID expired" (the tracker's clock is not ours):
// the ID is dropped, and the request made once more with a new one.
func (c *Client) udpAttempt(ctx context.Context, addr netip.AddrPort, deadline time.Time, ex udpExchange) error {
	var laddr *net.UDPAddr
	if l := c.localFor(addr.Addr()); l.IsValid() {
		laddr = net.UDPAddrFromAddrPort(netip.AddrPortFrom(l, 0))
	}
	conn, err := net.DialUDP("udp", laddr, net.UDPAddrFromAddrPort(addr))
	if err != nil {
		return err
	}
	defer conn.Close()
	stop := context.AfterFunc(ctx, func() { conn.SetReadDeadline(time.Unix(1, 0)) })
	defer stop()
	key := addr.String()
	buf := make([]byte, MaxUDPPacket+1)
	for retried := false; ; retried = true {
		id, held := c.connID(key)
		if !held {
			tx := newTx()
			err := c.udpRoundTrip(ctx, conn, buf, deadline, appendConnect(nil, tx), func(b []byte) error {
				id, err = parseConnect(b, tx)
				return err
			})
			if err != nil {
				return err
			}
			c.setConnID(key, id)
		}
		tx := newTx()
		err := c.udpRoundTrip(ctx, conn, buf, deadline, ex.build(id, tx), func(b []byte) error { return ex.parse(b, tx) })
		var te *Error
		if errors.As(err, &te) {
			c.dropConnID(key)
			if held && !retried {
				continue
			}
		}
		return err
	}
}

// udpRoundTrip sends p and reads until parse accepts an answer, an
// answer is an error, or the deadline passes. Packets of other
// transactions are counted and skipped.
func (c *Client) udpRoundTrip(ctx context.Context, conn *net.UDPConn, buf []byte, deadline time.Time, p []byte, parse func([]byte) error) error {
	if _, err := conn.Write(p); err != nil {
		return err
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	conn.SetReadDeadline(deadline)
	wrong := 0
	for {
		n, err := conn.Read(buf)
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				if wrong > 0 {
					return fmt.Errorf("%w (%d answers to other transactions ignored)", ErrTimeout, wrong)
				}
				return ErrTimeout
			}
			// An ICMP unreachable shows up here as "connection
			// refused": the tracker is down, no point waiting.
			return err
		}
		if n > MaxUDPPacket {
			return badAnswer("packet larger than %d bytes", MaxUDPPacket)
		}
		err = parse(buf[:n])
		if errors.Is(err, errWrongTx) {
			wrong++
			c.stats.wrongTxID.Add(1)
			continue
		}
		return err
	}
}

func newTx() uint32 {
	var b [4]byte
	rand.Read(b[:])
	return binary.BigEndian.Uint32(b[:])
}

func (c *Client) connID(key string) (uint64, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	ci, ok := c.conns[key]
	if !ok || time.Since(ci.at) >= UDPConnectionIDLifetime {
		delete(c.conns, key)
		return 0, false
	}
	return ci.id, true
}

func (c *Client) setConnID(key string, id uint64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.conns) >= maxConnIDs {
		clear(c.conns) // only saves a round trip; expired ones are the rest
	}
	c.conns[key] = connID{id, time.Now()}
}

func (c *Client) dropConnID(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.conns, key)
}

// maxConnIDs caps the cached connection IDs.
const maxConnIDs = 1024
