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
// with another transaction ID are counted and ignored.
func (c *Client) udpAnnounce(ctx context.Context, u *url.URL, r Request) (Response, error) {
	var resp Response
	var from netip.AddrPort
	err := c.udpDo(ctx, u, &from, udpExchange{
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
	err := c.udpDo(ctx, u, &from, udpExchange{
		build: func(conn uint64, tx uint32) []byte { return appendScrape(nil, conn, tx, hashes) },
		parse: func(b []byte, tx uint32) (err error) {
			out, err = parseUDPScrape(b, tx, len(hashes))
			return err
		},
	})
	return out, err
}

// resolve picks the tracker's address: the first the resolver gives.
func resolve(ctx context.Context, u *url.URL) (netip.AddrPort, error) {
	ap, err := netip.ParseAddrPort(u.Host)
	if err == nil {
		return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()), nil
	}
	port, err := net.DefaultResolver.LookupPort(ctx, "udp", u.Port())
	if err != nil {
		return netip.AddrPort{}, err
	}
	ips, err := net.DefaultResolver.LookupNetIP(ctx, "ip", u.Hostname())
	if err != nil {
		return netip.AddrPort{}, err
	}
	if len(ips) == 0 {
		return netip.AddrPort{}, fmt.Errorf("%s: no address", u.Hostname())
	}
	return netip.AddrPortFrom(ips[0].Unmap(), uint16(port)), nil
}

// udpDo runs ex against the tracker at u with BEP 15's retries: attempt
// n waits udpBase·2^n for its answer, for n below udpAttempts, and a
// connection ID older than UDPConnectionIDLifetime is asked for again
// first.
func (c *Client) udpDo(ctx context.Context, u *url.URL, from *netip.AddrPort, ex udpExchange) error {
	addr, err := resolve(ctx, u)
	if err != nil {
		return err
	}
	*from = addr
	var laddr *net.UDPAddr
	if c.local.IsValid() && c.local.Is4() == addr.Addr().Is4() {
		laddr = net.UDPAddrFromAddrPort(netip.AddrPortFrom(c.local, 0))
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
	var last error
	for n := 0; n < c.udpAttempts; n++ {
		deadline := time.Now().Add(c.udpBase << n)
		id, ok := c.connID(key)
		if !ok {
			tx := newTx()
			err := c.udpRoundTrip(ctx, conn, buf, deadline, appendConnect(nil, tx), func(b []byte) error {
				id, err = parseConnect(b, tx)
				return err
			})
			if err != nil {
				if last = err; errors.Is(err, ErrTimeout) && ctx.Err() == nil {
					continue
				}
				return err
			}
			c.setConnID(key, id)
		}
		tx := newTx()
		err := c.udpRoundTrip(ctx, conn, buf, deadline, ex.build(id, tx), func(b []byte) error { return ex.parse(b, tx) })
		if err == nil {
			return nil
		}
		var te *Error
		if errors.As(err, &te) {
			// Often "connection ID expired" or the like: ask anew next
			// time.
			c.dropConnID(key)
		}
		if last = err; !errors.Is(err, ErrTimeout) || ctx.Err() != nil {
			return err
		}
	}
	return last
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
