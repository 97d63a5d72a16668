package magnet

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"strings"
)

// checkPeer validates an x.pe value as host:port. It is kept as given rather
// than resolved: resolving is network I/O and belongs to the caller.
func checkPeer(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("magnet: x.pe %s is not host:port (IPv6 in brackets): %v", quote(s), stripAddr(err))
	}
	if strings.HasPrefix(s, "[") {
		a, err := netip.ParseAddr(host)
		if err != nil || !a.Is6() || a.Zone() != "" {
			return fmt.Errorf("magnet: x.pe %s: %s in brackets is not an IPv6 address", quote(s), quote(host))
		}
	} else if !validHost(host) {
		return fmt.Errorf("magnet: x.pe %s: %s is not a valid host name or IPv4 address", quote(s), quote(host))
	}
	if port == "" || strings.TrimLeft(port, "0123456789") != "" {
		return fmt.Errorf("magnet: x.pe %s: port %s is not a number", quote(s), quote(port))
	}
	if p, err := strconv.ParseUint(port, 10, 16); err != nil || p == 0 {
		return fmt.Errorf("magnet: x.pe %s: port %s out of range 1-65535", quote(s), quote(port))
	}
	return nil
}

// validHost accepts IPv4 literals and DNS names. The character set is
// deliberately narrow: a peer address reaching a dialer should not carry
// spaces, control bytes or anything else a resolver might interpret.
func validHost(h string) bool {
	if h == "" || len(h) > 253 {
		return false
	}
	if a, err := netip.ParseAddr(h); err == nil {
		return a.Is4()
	}
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '.' || c == '_') {
			return false
		}
	}
	return true
}

// stripAddr drops the address that net.AddrError repeats, since our message
// already quotes it (truncated).
func stripAddr(err error) string {
	if ae, ok := err.(*net.AddrError); ok {
		return ae.Err
	}
	return err.Error()
}
