//go:build linux

package adversary

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"syscall"
	"time"
)

// BlackHole is a TCP address on loopback that never completes a
// connection: a listener whose accept queue is full and never drained,
// so Linux drops every further SYN, as a route that leads nowhere does.
// It stands for a tracker's dead address (an IPv6 path that is down, a
// dead host of a round-robin name), where a closed port would refuse at
// once.
type BlackHole struct {
	// Addr is where connects hang.
	Addr   netip.AddrPort
	fd     int
	filler net.Conn
}

// NewBlackHole makes a BlackHole at a (port 0: any).
func NewBlackHole(a netip.AddrPort) (*BlackHole, error) {
	var fam int
	var sa syscall.Sockaddr
	if ip := a.Addr().Unmap(); ip.Is4() {
		fam, sa = syscall.AF_INET, &syscall.SockaddrInet4{Port: int(a.Port()), Addr: ip.As4()}
	} else {
		fam, sa = syscall.AF_INET6, &syscall.SockaddrInet6{Port: int(a.Port()), Addr: ip.As16()}
	}
	fd, err := syscall.Socket(fam, syscall.SOCK_STREAM|syscall.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	b := &BlackHole{fd: fd}
	if err := syscall.Bind(fd, sa); err != nil {
		b.Close()
		return nil, err
	}
	// A backlog of 0 queues one connection; the filler takes its place.
	if err := syscall.Listen(fd, 0); err != nil {
		b.Close()
		return nil, err
	}
	got, err := syscall.Getsockname(fd)
	if err != nil {
		b.Close()
		return nil, err
	}
	switch s := got.(type) {
	case *syscall.SockaddrInet4:
		b.Addr = netip.AddrPortFrom(netip.AddrFrom4(s.Addr), uint16(s.Port))
	case *syscall.SockaddrInet6:
		b.Addr = netip.AddrPortFrom(netip.AddrFrom16(s.Addr), uint16(s.Port))
	}
	if b.filler, err = net.DialTimeout("tcp", b.Addr.String(), 5*time.Second); err != nil {
		b.Close()
		return nil, fmt.Errorf("filling the queue: %w", err)
	}
	// Make sure: a connect must now hang.
	probe, err := net.DialTimeout("tcp", b.Addr.String(), 200*time.Millisecond)
	if err == nil {
		probe.Close()
		b.Close()
		return nil, errors.New("the kernel accepted past a full queue: no black hole here")
	}
	var ne net.Error
	if !errors.As(err, &ne) || !ne.Timeout() {
		b.Close()
		return nil, fmt.Errorf("a connect did not hang: %w", err)
	}
	return b, nil
}

// Close stops it.
func (b *BlackHole) Close() {
	if b.filler != nil {
		b.filler.Close()
	}
	syscall.Close(b.fd)
}
