package portmap

import (
	"bufio"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	natpmp "github.com/jackpal/go-nat-pmp"
)

// natpmpBackend speaks NAT-PMP (RFC 6886) to one gateway. PCP (RFC 6887),
// its successor, is not spoken: no maintained Go library offers it apart
// from a whole VPN client's port mapper; a PCP-only gateway answers our
// NAT-PMP request with version 2, which is a clear error here, and UPnP
// is tried next.
type natpmpBackend struct {
	gw     netip.Addr
	client *natpmp.Client
	local  netip.Addr
	// adds are the library's add calls still running: one whose ctx
	// ended goes on resending until the client's timeout.
	adds sync.WaitGroup
}

func newNATPMP(ctx context.Context, cfg Config) (*natpmpBackend, error) {
	gw := cfg.NATPMPGateway
	if !gw.IsValid() {
		var err error
		if gw, err = cfg.routes(cfg.LocalIP); err != nil {
			return nil, err
		}
	}
	if !gw.Is4() {
		return nil, fmt.Errorf("gateway %v is not IPv4", gw)
	}
	b := &natpmpBackend{gw: gw, local: cfg.LocalIP}
	b.client = b.newClient(callTimeout)
	// An exchange proves there is a NAT-PMP server before we rely on it.
	if _, err := b.externalIP(ctx); err != nil {
		return nil, err
	}
	return b, nil
}

func (b *natpmpBackend) newClient(timeout time.Duration) *natpmp.Client {
	var local net.IP
	if b.local.IsValid() && !b.local.IsUnspecified() {
		local = b.local.AsSlice()
	}
	return natpmp.NewClientWithLocalAndTimeout(b.gw.AsSlice(), local, timeout)
}

func (b *natpmpBackend) method() string      { return "NAT-PMP" }
func (b *natpmpBackend) gateway() netip.Addr { return b.gw }

// bounded runs a library call, which takes no context, so that it ends
// by ctx's deadline at the latest; the call itself is bounded by the
// client's timeout and ends on its own. running, if not nil, counts it
// until it does.
func bounded[T any](ctx context.Context, running *sync.WaitGroup, f func() (T, error)) (T, error) {
	type result struct {
		v   T
		err error
	}
	if err := ctx.Err(); err != nil {
		var zero T
		return zero, err // not sent at all: nothing to wait for
	}
	ch := make(chan result, 1)
	if running != nil {
		running.Add(1)
	}
	go func() {
		if running != nil {
			defer running.Done()
		}
		v, err := f()
		ch <- result{v, err}
	}()
	select {
	case r := <-ch:
		return r.v, r.err
	case <-ctx.Done():
		var zero T
		return zero, ctx.Err()
	}
}

// add returns ext with every error: the request may have been heard,
// and a NAT-PMP removal names only our own internal port, so removing a
// mapping that is not there costs nothing.
func (b *natpmpBackend) add(ctx context.Context, proto string, internal, ext uint16, lease time.Duration) (uint16, time.Duration, error) {
	r, err := bounded(ctx, &b.adds, func() (*natpmp.AddPortMappingResult, error) {
		return b.client.AddPortMapping(proto, int(internal), int(ext), int(lease/time.Second))
	})
	if err != nil {
		return ext, 0, err
	}
	switch {
	case r.InternalPort != internal:
		return ext, 0, fmt.Errorf("gateway answered for port %d, not %d", r.InternalPort, internal)
	case r.MappedExternalPort == 0:
		return ext, 0, errors.New("gateway mapped external port 0")
	case r.PortMappingLifetimeInSeconds == 0:
		return ext, 0, errors.New("gateway granted a lease of 0 s")
	}
	return r.MappedExternalPort, time.Duration(r.PortMappingLifetimeInSeconds) * time.Second, nil
}

// remove asks for a lease of 0, which RFC 6886 defines as removal.
func (b *natpmpBackend) remove(ctx context.Context, proto string, internal, _ uint16) error {
	timeout := callTimeout
	if d, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(d))
	}
	c := b.newClient(max(timeout, time.Millisecond))
	_, err := bounded(ctx, nil, func() (*natpmp.AddPortMappingResult, error) {
		return c.AddPortMapping(proto, int(internal), 0, 0)
	})
	return err
}

func (b *natpmpBackend) settle(ctx context.Context) {
	done := make(chan struct{})
	go func() {
		b.adds.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-ctx.Done():
	}
}

func (b *natpmpBackend) externalIP(ctx context.Context) (netip.Addr, error) {
	r, err := bounded(ctx, nil, b.client.GetExternalAddress)
	if err != nil {
		return netip.Addr{}, err
	}
	return netip.AddrFrom4(r.ExternalIPAddress), nil
}

// defaultGateway is the gateway of the IPv4 default route that local
// leaves by (its interface's), or of the system's default route (the
// lowest metric) if local is zero or unspecified: from Linux's
// /proc/net/route. On a host with several interfaces, the default
// route's gateway is no gateway of an address on another one.
func defaultGateway(local netip.Addr) (netip.Addr, error) {
	iface := ""
	if local.IsValid() && !local.IsUnspecified() {
		var err error
		if iface, err = ifaceOf(local); err != nil {
			return netip.Addr{}, err
		}
	}
	f, err := os.Open("/proc/net/route")
	if err != nil {
		return netip.Addr{}, fmt.Errorf("finding the default gateway: %w", err)
	}
	defer f.Close()
	return parseRoutes(io.LimitReader(f, 1<<20), iface)
}

// ifaceOf names the interface that holds a.
func ifaceOf(a netip.Addr) (string, error) {
	ifs, err := net.Interfaces()
	if err != nil {
		return "", err
	}
	a = a.Unmap()
	for _, ifc := range ifs {
		addrs, err := ifc.Addrs()
		if err != nil {
			continue
		}
		for _, ad := range addrs {
			if n, ok := ad.(*net.IPNet); ok {
				if ip, ok := netip.AddrFromSlice(n.IP); ok && ip.Unmap() == a {
					return ifc.Name, nil
				}
			}
		}
	}
	return "", fmt.Errorf("no interface has the address %v", a)
}

// parseRoutes finds, in /proc/net/route's format (a header line, then
// one route a line, fields separated by blanks, the addresses in hex in
// host, little-endian, byte order), the gateway of the default route of
// the lowest metric, on iface alone if iface is not empty.
func parseRoutes(r io.Reader, iface string) (netip.Addr, error) {
	const rtfGateway = 0x2
	sc := bufio.NewScanner(r)
	first := true
	var best netip.Addr
	var bestMetric uint64
	for sc.Scan() {
		if first {
			first = false
			continue
		}
		f := strings.Fields(sc.Text())
		if len(f) < 8 || f[1] != "00000000" || f[7] != "00000000" || iface != "" && f[0] != iface {
			continue
		}
		flags, err := strconv.ParseUint(f[3], 16, 32)
		if err != nil || flags&rtfGateway == 0 {
			continue
		}
		metric, err := strconv.ParseUint(f[6], 10, 32)
		if err != nil {
			continue
		}
		b, err := hex.DecodeString(f[2])
		if err != nil || len(b) != 4 {
			continue
		}
		var a [4]byte
		binary.BigEndian.PutUint32(a[:], binary.LittleEndian.Uint32(b))
		gw := netip.AddrFrom4(a)
		if gw.IsUnspecified() || best.IsValid() && metric >= bestMetric {
			continue
		}
		best, bestMetric = gw, metric
	}
	if !best.IsValid() {
		if iface != "" {
			return netip.Addr{}, fmt.Errorf("no IPv4 default route on %s", iface)
		}
		return netip.Addr{}, errors.New("no IPv4 default route")
	}
	return best, nil
}
