package api

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"strconv"
)

// Before it sends the token, the client checks who runs the program
// listening where it connected: a daemon that was killed leaves its
// api-addr behind, and any local user may then take its port. Linux says
// who owns each socket in /proc/net/tcp and /proc/net/tcp6; elsewhere the
// client does not check (see procNetOpen).
const (
	// MaxProcNetBytes bounds what is read of /proc/net/tcp or tcp6: some
	// 400,000 sockets, at under 180 bytes a line.
	MaxProcNetBytes = 64 << 20
	// maxProcNetLine bounds one line of it; the kernel writes 150 (tcp)
	// or 178 (tcp6) bytes.
	maxProcNetLine = 512
	// tcpListen is the state column of a listening socket.
	tcpListen = 0x0A
)

// procSocket is one line of /proc/net/tcp or tcp6.
type procSocket struct {
	local netip.AddrPort
	state uint8
	uid   uint32
}

// scanProcNet calls each for every socket in r, a /proc/net/tcp or tcp6
// table whose addresses are words in byte order order (the machine's: the
// kernel prints each 32-bit word of a network-order address as a number).
func scanProcNet(r io.Reader, order binary.ByteOrder, each func(procSocket)) error {
	lr := &io.LimitedReader{R: r, N: MaxProcNetBytes + 1}
	sc := bufio.NewScanner(lr)
	sc.Buffer(make([]byte, 0, maxProcNetLine), maxProcNetLine)
	first := true
	for sc.Scan() {
		if first {
			// The header: "sl local_address rem_address st ... uid ...".
			first = false
			continue
		}
		line := sc.Bytes()
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		s, err := parseProcNetLine(line, order)
		if err != nil {
			if lr.N <= 0 {
				break // the line the bound cut
			}
			return err
		}
		each(s)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return fmt.Errorf("a line over %d bytes", maxProcNetLine)
		}
		return err
	}
	if lr.N <= 0 {
		return fmt.Errorf("over %d bytes", MaxProcNetBytes)
	}
	return nil
}

// parseProcNetLine parses "sl local rem st tx:rx tr:when retrnsmt uid ...".
func parseProcNetLine(line []byte, order binary.ByteOrder) (procSocket, error) {
	f := bytes.Fields(line)
	if len(f) < 8 {
		return procSocket{}, fmt.Errorf("%d fields in a socket's line, want 8 or more", len(f))
	}
	local, err := parseProcNetAddr(f[1], order)
	if err != nil {
		return procSocket{}, err
	}
	st, err := strconv.ParseUint(string(f[3]), 16, 8)
	if err != nil || len(f[3]) != 2 {
		return procSocket{}, fmt.Errorf("socket state %q: want 2 hex digits", f[3])
	}
	uid, err := strconv.ParseUint(string(f[7]), 10, 32)
	if err != nil {
		return procSocket{}, fmt.Errorf("socket uid %q: %w", f[7], err)
	}
	return procSocket{local: local, state: uint8(st), uid: uint32(uid)}, nil
}

// parseProcNetAddr parses "0100007F:1F90" or its 32-digit IPv6 form.
func parseProcNetAddr(b []byte, order binary.ByteOrder) (netip.AddrPort, error) {
	i := bytes.IndexByte(b, ':')
	if i < 0 || len(b)-i-1 != 4 {
		return netip.AddrPort{}, fmt.Errorf("socket address %q: want HEX:PORT", b)
	}
	port, err := strconv.ParseUint(string(b[i+1:]), 16, 16)
	if err != nil {
		return netip.AddrPort{}, fmt.Errorf("socket port %q: %w", b[i+1:], err)
	}
	h := b[:i]
	if len(h) != 8 && len(h) != 32 {
		return netip.AddrPort{}, fmt.Errorf("socket address %q: want 8 or 32 hex digits", h)
	}
	ip := make([]byte, len(h)/2)
	for w := 0; w < len(ip); w += 4 {
		v, err := strconv.ParseUint(string(h[2*w:2*w+8]), 16, 32)
		if err != nil {
			return netip.AddrPort{}, fmt.Errorf("socket address %q: %w", h, err)
		}
		order.PutUint32(ip[w:], uint32(v))
	}
	a, _ := netip.AddrFromSlice(ip)
	return netip.AddrPortFrom(a, uint16(port)), nil
}

// ForeignListenerError is the client refusing to send the token to a
// program that another user runs.
type ForeignListenerError struct {
	Addr string
	UID  uint32
}

func (e *ForeignListenerError) Error() string {
	return fmt.Sprintf("the program at %s is not run by you (it runs as uid %d): not sending it the token", e.Addr, e.UID)
}

// listenerUIDs is the owner of every listening socket in the tables that
// a connection to dst could have reached: one bound to dst's address or
// to the unspecified address of its family, or, for an IPv4 dst, to [::]
// (dual-stack) or to dst mapped into IPv6.
func listenerUIDs(open func(string) (io.ReadCloser, error), order binary.ByteOrder, dst netip.AddrPort) ([]uint32, error) {
	dst = netip.AddrPortFrom(dst.Addr().Unmap(), dst.Port())
	tables := []string{"/proc/net/tcp6"}
	if dst.Addr().Is4() {
		tables = append(tables, "/proc/net/tcp")
	}
	var uids []uint32
	for _, name := range tables {
		f, err := open(name)
		if errors.Is(err, fs.ErrNotExist) && name == "/proc/net/tcp6" {
			continue // IPv6 is off
		}
		if err != nil {
			return nil, err
		}
		err = scanProcNet(f, order, func(s procSocket) {
			if s.state != tcpListen || s.local.Port() != dst.Port() {
				return
			}
			a := s.local.Addr().Unmap()
			if a == dst.Addr() || (a.IsUnspecified() && (a.Is6() || dst.Addr().Is4())) {
				uids = append(uids, s.uid)
			}
		})
		f.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	return uids, nil
}

// checkListener refuses dst unless every socket listening there is run by
// one of trusted.
func checkListener(open func(string) (io.ReadCloser, error), order binary.ByteOrder, dst netip.AddrPort, trusted []uint32) error {
	uids, err := listenerUIDs(open, order, dst)
	if err != nil {
		return fmt.Errorf("cannot tell who runs the program at %s (%w): not sending it the token", dst, err)
	}
	if len(uids) == 0 {
		return fmt.Errorf("cannot find the program at %s among the listening sockets: not sending it the token", dst)
	}
next:
	for _, u := range uids {
		for _, t := range trusted {
			if u == t {
				continue next
			}
		}
		return &ForeignListenerError{Addr: dst.String(), UID: u}
	}
	return nil
}
