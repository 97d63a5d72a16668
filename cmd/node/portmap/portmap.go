package portmap

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"sync"
	"time"

	"go.uber.org/zap"
)

// Bounds. A gateway is a box on the LAN that may be slow, broken or
// hostile: every exchange with it has a deadline, and what it says is
// checked before it is used.
const (
	// Lease is how long a mapping is asked for. It is renewed at half of
	// what the gateway grants, so a node that dies without removing its
	// mappings leaves them behind for at most this long.
	Lease = time.Hour
	// minRenew is the shortest wait between renewals, whatever lease the
	// gateway grants: a gateway granting one second must not make us
	// send a request every half second.
	minRenew = 30 * time.Second
	// callTimeout bounds one request to the gateway (one NAT-PMP
	// exchange with its retries, one HTTP request of UPnP).
	callTimeout = 3 * time.Second
	// ssdpWait is how long an SSDP search listens for answers.
	ssdpWait = 2 * time.Second
	// maxSSDPAnswers is how many SSDP answers of the gateway (of any
	// host while the gateway is not known) one search reads before it
	// stops listening; other hosts' answers are read past and do not
	// count, so that a LAN host flooding us cannot spend them before the
	// gateway answers. maxSSDPReads bounds the reads of all answers
	// together: a flood costs no more.
	maxSSDPAnswers = 32
	maxSSDPReads   = 256
	// maxDescriptionBytes bounds a UPnP device description (a real one
	// is a few KiB).
	maxDescriptionBytes = 64 << 10
	// maxSOAPBytes bounds a UPnP control answer (a real one is well
	// under 1 KiB).
	maxSOAPBytes = 16 << 10
	// RemoveTimeout bounds removing every mapping on Close, and the
	// mappings left on a gateway we moved away from.
	RemoveTimeout = 2 * time.Second
	// CloseTimeout bounds Close: a request to the gateway still in
	// flight when it is called is waited for (callTimeout at most),
	// since the NAT-PMP library keeps resending it until then and a
	// resend arriving after our removal would map the port again; then
	// the removal (RemoveTimeout).
	CloseTimeout = callTimeout + RemoveTimeout
	// retryAfter is how long after a failure (no gateway, a refusal, a
	// renewal that failed) the next attempt starts from discovery.
	retryAfter = 2 * time.Minute
)

// Config says what to map and where the gateway is.
type Config struct {
	// TCPPort and UDPPort are the local ports to map (0: none). The same
	// external port is asked for; a gateway may give another, which is
	// then the one reported.
	TCPPort, UDPPort uint16
	// LocalIP is the LAN address the mappings point at. Zero: the
	// address this host uses to reach the gateway.
	LocalIP netip.Addr

	// RootURL skips SSDP discovery: the UPnP gateway's device
	// description is there. Tests point it at a loopback fake.
	RootURL string
	// NATPMPGateway is the NAT-PMP gateway (its server is on port 5351,
	// RFC 6886). Zero: the default route's gateway. Tests point it at a
	// loopback fake.
	NATPMPGateway netip.Addr
	// NoUPnP and NoNATPMP leave one protocol out.
	NoUPnP, NoNATPMP bool

	// OnTCPPort is told the external TCP port each time a mapping
	// succeeds with a port other than the one told before: where peers
	// on the Internet reach us, which may differ from TCPPort.
	OnTCPPort func(ext uint16)
	// OnExternalIP is told the external address a gateway reports, with
	// the gateway's own address as the voter, each time it is learned:
	// the DHT's BEP 42 vote takes it as one voter among many. Only
	// public IPv4 addresses are passed on.
	OnExternalIP func(voter, ip netip.Addr)
	Logger       *zap.Logger

	// ssdpAddrs are where the SSDP search goes: the multicast group, or
	// in tests loopback fakes (several stand for several hosts on a LAN).
	ssdpAddrs []netip.AddrPort
	// routes finds the gateway of the default route LocalIP leaves by
	// (defaultGateway; tests: a fake's address, or an error for none
	// known).
	routes func(local netip.Addr) (netip.Addr, error)
	// lease and minRenew override the constants in tests.
	lease, minRenew, retryAfter time.Duration
}

// Status is what the mapper has achieved so far.
type Status struct {
	// Method is "UPnP" or "NAT-PMP"; empty while nothing is mapped.
	Method  string
	Gateway netip.Addr
	// ExternalIP is the gateway's external address, if it gave a usable
	// one (zero otherwise: none, garbage, or 0.0.0.0).
	ExternalIP netip.Addr
	// TCP and UDP are the external ports mapped (0: not mapped).
	TCP, UDP uint16
	// Err is the last failure, cleared by a success.
	Err error
}

// Mapped reports whether any port is mapped.
func (s Status) Mapped() bool { return s.TCP != 0 || s.UDP != 0 }

// String is the status for a progress line: "1.2.3.4:6881 (UPnP)", or
// the ports alone when the gateway gave no external address.
func (s Status) String() string {
	if !s.Mapped() {
		if s.Err != nil {
			return "not mapped: " + s.Err.Error()
		}
		return "not mapped"
	}
	host := "?"
	if s.ExternalIP.IsValid() {
		host = s.ExternalIP.String()
	}
	switch {
	case s.TCP != 0 && s.UDP != 0 && s.TCP != s.UDP:
		return fmt.Sprintf("%s tcp:%d udp:%d (%s)", host, s.TCP, s.UDP, s.Method)
	case s.TCP != 0:
		return fmt.Sprintf("%s:%d (%s)", host, s.TCP, s.Method)
	default:
		return fmt.Sprintf("%s:%d (%s)", host, s.UDP, s.Method)
	}
}

// backend is one protocol's client for one gateway.
type backend interface {
	method() string
	gateway() netip.Addr
	// add maps proto ("tcp" or "udp") local port internal, asking for
	// external port ext, and returns the external port and lease the
	// gateway granted.
	// On an error the port is not 0 if the gateway may have mapped it
	// all the same (the answer was lost or cut off): Close removes it.
	add(ctx context.Context, proto string, internal, ext uint16, lease time.Duration) (uint16, time.Duration, error)
	// settle waits, until ctx ends, for the adds that a cancelled ctx
	// cut short but that still go on (and may still map a port).
	settle(ctx context.Context)
	remove(ctx context.Context, proto string, internal, ext uint16) error
	externalIP(ctx context.Context) (netip.Addr, error)
}

// Mapper keeps the configured ports mapped on the gateway until Close.
type Mapper struct {
	cfg    Config
	log    *zap.Logger
	cancel context.CancelFunc
	done   chan struct{}

	mu  sync.Mutex
	st  Status
	bk  backend // the gateway the current mappings are on
	tcp uint16  // external ports currently mapped
	udp uint16
	// told is the external TCP port last passed to OnTCPPort.
	told uint16
}

// Start maps the ports in the background, renews them and tries again
// after failures, until Close.
func Start(cfg Config) *Mapper {
	if cfg.Logger == nil {
		cfg.Logger = zap.NewNop()
	}
	if len(cfg.ssdpAddrs) == 0 {
		cfg.ssdpAddrs = []netip.AddrPort{ssdpGroup}
	}
	if cfg.routes == nil {
		cfg.routes = defaultGateway
	}
	if cfg.lease == 0 {
		cfg.lease = Lease
	}
	if cfg.minRenew == 0 {
		cfg.minRenew = minRenew
	}
	if cfg.retryAfter == 0 {
		cfg.retryAfter = retryAfter
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &Mapper{cfg: cfg, log: cfg.Logger.Named("portmap"), cancel: cancel, done: make(chan struct{})}
	go m.run(ctx)
	return m
}

// Status is a snapshot of what is mapped.
func (m *Mapper) Status() Status {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.st
}

// Close stops renewing and removes the mappings, within CloseTimeout.
func (m *Mapper) Close() error {
	m.cancel()
	<-m.done
	m.mu.Lock()
	bk, tcp, udp := m.bk, m.tcp, m.udp
	m.bk, m.tcp, m.udp = nil, 0, 0
	m.st = Status{}
	m.mu.Unlock()
	if bk == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
	bk.settle(ctx)
	cancel()
	return m.removeAll(context.Background(), bk, tcp, udp)
}

// removeAll removes the mappings of tcp and udp (external ports, 0 for
// none) from bk, within RemoveTimeout.
func (m *Mapper) removeAll(ctx context.Context, bk backend, tcp, udp uint16) error {
	ctx, cancel := context.WithTimeout(ctx, RemoveTimeout)
	defer cancel()
	var errs []error
	if tcp != 0 {
		errs = append(errs, bk.remove(ctx, "tcp", m.cfg.TCPPort, tcp))
	}
	if udp != 0 {
		errs = append(errs, bk.remove(ctx, "udp", m.cfg.UDPPort, udp))
	}
	return errors.Join(errs...)
}

// sameGateway reports whether a and b map on the same gateway with the
// same protocol: rediscovery builds a new backend for the gateway we
// already use, whose mappings carry on.
func sameGateway(a, b backend) bool {
	return a.method() == b.method() && a.gateway() == b.gateway()
}

func (m *Mapper) run(ctx context.Context) {
	defer close(m.done)
	var bk backend
	for {
		if bk == nil {
			var err error
			if bk, err = m.discover(ctx); err != nil {
				m.failed(err)
				if !sleep(ctx, m.cfg.retryAfter) {
					return
				}
				continue
			}
		}
		granted, err := m.mapAll(ctx, bk)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			m.failed(err)
			bk = nil // rediscover: the gateway may have changed
			if !sleep(ctx, m.cfg.retryAfter) {
				return
			}
			continue
		}
		if !sleep(ctx, m.renewAfter(granted)) {
			return
		}
	}
}

// renewAfter is when a mapping granted for granted is renewed: at half
// the lease, but no sooner than minRenew and no later than half of what
// we asked for, whatever the gateway said.
func (m *Mapper) renewAfter(granted time.Duration) time.Duration {
	return min(max(granted/2, m.cfg.minRenew), m.cfg.lease/2)
}

// discover finds a gateway: NAT-PMP first (one unicast exchange with the
// default route's gateway), then UPnP (an SSDP search).
func (m *Mapper) discover(ctx context.Context) (backend, error) {
	var errs []error
	if !m.cfg.NoNATPMP {
		bk, err := newNATPMP(ctx, m.cfg)
		if err == nil {
			return bk, nil
		}
		errs = append(errs, fmt.Errorf("NAT-PMP: %w", err))
	}
	if !m.cfg.NoUPnP {
		bk, err := newUPnP(ctx, m.cfg)
		if err == nil {
			return bk, nil
		}
		errs = append(errs, fmt.Errorf("UPnP: %w", err))
	}
	if len(errs) == 0 {
		return nil, errors.New("no port mapping protocol enabled")
	}
	return nil, errors.Join(errs...)
}

// mapAll maps (or renews) every configured port on bk and asks for the
// external address. It returns the shortest lease granted.
func (m *Mapper) mapAll(ctx context.Context, bk backend) (time.Duration, error) {
	m.mu.Lock()
	old, tcp, udp := m.bk, m.tcp, m.udp
	m.mu.Unlock()
	if old != nil && !sameGateway(old, bk) {
		// Another gateway now: what the old one mapped would stay open
		// until its lease ends, and nothing would remember it.
		if err := m.removeAll(ctx, old, tcp, udp); err != nil {
			m.log.Debug("removing mappings from the previous gateway", zap.Stringer("gateway", old.gateway()), zap.Error(err))
		}
		if ctx.Err() != nil {
			return 0, ctx.Err() // Close removes them again
		}
		m.mu.Lock()
		m.bk, m.tcp, m.udp = nil, 0, 0
		m.mu.Unlock()
		tcp, udp = 0, 0
	}
	granted := m.cfg.lease
	// tcp and udp stay what may be mapped on bk, for Close to remove,
	// even when a renewal fails (it may have failed only for us, or been
	// cut short by Close); the status shows only what this round mapped.
	var stTCP, stUDP uint16
	one := func(proto string, internal uint16, ext, shown *uint16) error {
		if internal == 0 {
			return nil
		}
		want := *ext
		if want == 0 {
			want = internal
		}
		if ctx.Err() != nil {
			return ctx.Err() // Close: no new request
		}
		// A request once sent is let finish even when Close cancels ctx:
		// a gateway may act on a SOAP request whose client gave up, after
		// Close's removal, and leave the port mapped. Close waits for it.
		callCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), callTimeout)
		defer cancel()
		got, lease, err := bk.add(callCtx, proto, internal, want, m.cfg.lease)
		if err != nil {
			if got != 0 {
				*ext = got
			}
			return fmt.Errorf("%s %s port %d: %w", bk.method(), proto, internal, err)
		}
		*ext, *shown = got, got
		granted = min(granted, lease)
		return nil
	}
	err := errors.Join(one("tcp", m.cfg.TCPPort, &tcp, &stTCP), one("udp", m.cfg.UDPPort, &udp, &stUDP))
	if tcp != 0 || udp != 0 {
		m.mu.Lock()
		m.bk, m.tcp, m.udp = bk, tcp, udp
		m.mu.Unlock()
	}
	if ctx.Err() != nil {
		return 0, ctx.Err()
	}

	ip, ipErr := bk.externalIP(ctx)
	if ipErr != nil {
		m.log.Debug("external address", zap.String("method", bk.method()), zap.Error(ipErr))
	}
	ip = usableExternal(ip)

	m.mu.Lock()
	prev := m.st
	m.st = Status{Method: bk.method(), Gateway: bk.gateway(), ExternalIP: ip, TCP: stTCP, UDP: stUDP, Err: err}
	st := m.st
	m.mu.Unlock()
	if err != nil && !st.Mapped() {
		return 0, err
	}
	if err != nil {
		m.log.Warn("port mapping partly failed", zap.Error(err))
	}
	if st.Mapped() && (prev.TCP != st.TCP || prev.UDP != st.UDP || prev.ExternalIP != st.ExternalIP || prev.Method != st.Method) {
		m.log.Info("ports mapped", zap.String("method", st.Method), zap.Stringer("gateway", st.Gateway),
			zap.Stringer("external_ip", st.ExternalIP), zap.Uint16("tcp", st.TCP), zap.Uint16("udp", st.UDP), zap.Duration("lease", granted))
	}
	if ip.IsValid() && publicIPv4(ip) && m.cfg.OnExternalIP != nil {
		m.cfg.OnExternalIP(bk.gateway(), ip)
	}
	if st.TCP != 0 && st.TCP != m.told && m.cfg.OnTCPPort != nil {
		m.told = st.TCP
		m.cfg.OnTCPPort(st.TCP)
	}
	return granted, nil
}

func (m *Mapper) failed(err error) {
	m.mu.Lock()
	m.st.Err = err
	m.mu.Unlock()
	m.log.Debug("port mapping failed", zap.Error(err))
}

// usableExternal keeps an external address a gateway reported if it is
// an IPv4 address a peer could be told to reach: not unspecified,
// loopback, multicast or link-local. A private address is kept (it is
// where the mapping is, behind another NAT) but never voted with.
func usableExternal(ip netip.Addr) netip.Addr {
	ip = ip.Unmap()
	if !ip.Is4() || ip.IsUnspecified() || ip.IsLoopback() || ip.IsMulticast() || ip.IsLinkLocalUnicast() ||
		ip == netip.AddrFrom4([4]byte{255, 255, 255, 255}) {
		return netip.Addr{}
	}
	return ip
}

// sharedSpace is RFC 6598's carrier-grade NAT range: as private as
// RFC 1918 for our purpose.
var sharedSpace = netip.MustParsePrefix("100.64.0.0/10")

// publicIPv4 reports whether ip may be voted for as our address on the
// Internet.
func publicIPv4(ip netip.Addr) bool {
	return ip.Is4() && ip.IsGlobalUnicast() && !ip.IsPrivate() && !sharedSpace.Contains(ip)
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
