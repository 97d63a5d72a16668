package main

import (
	"errors"
	"net"
	"net/netip"
	"strconv"
	"strings"

	"github.com/spf13/pflag"
)

// registerPeerListen adds --peer-listen, for the subcommands that accept
// peers (fetch, seed).
func (f *dhtFlags) registerPeerListen(fs *pflag.FlagSet) {
	fs.Var(&f.peerListen, "peer-listen", "more IP `address`es to accept peers on, beside --listen's, on its port "+
		"(comma-separated or repeated; e.g. [2001:db8::5] with --listen 192.0.2.5:6881). "+
		"Our dials of each family leave from its address, and peers of the other family are told it (BEP 7). "+
		"The default --listen (all interfaces) already accepts IPv4 and IPv6 peers")
	markGroup(fs, groupExpert, "peer-listen")
}

// listenPeers opens a TCP listener on each of addrs (an IP, or IP:port
// with port the given one) at port: a peer learns one port from our
// announce or our handshake, whichever address it reaches us at.
func listenPeers(addrs []string, port int) ([]net.Listener, error) {
	var lns []net.Listener
	fail := func(err error) ([]net.Listener, error) {
		for _, ln := range lns {
			ln.Close()
		}
		return nil, err
	}
	for _, a := range addrs {
		ip, err := peerListenIP(a, port)
		if err != nil {
			return fail(err)
		}
		ln, err := net.Listen("tcp", net.JoinHostPort(ip.String(), strconv.Itoa(port)))
		if err != nil {
			return fail(err)
		}
		lns = append(lns, ln)
	}
	return lns, nil
}

// peerListenIP parses one --peer-listen value.
func peerListenIP(a string, port int) (netip.Addr, error) {
	host := a
	if h, p, err := net.SplitHostPort(a); err == nil {
		if p != "0" && p != strconv.Itoa(port) {
			return netip.Addr{}, usagef("--peer-listen %q: the port must be --listen's (%d)", a, port)
		}
		host = h
	}
	ip, err := netip.ParseAddr(strings.Trim(host, "[]"))
	if err != nil {
		return netip.Addr{}, usagef("--peer-listen %q: want an IP address", a)
	}
	if ip.IsUnspecified() {
		return netip.Addr{}, usageError{errors.New("--peer-listen " + a + ": a wildcard is --listen's job")}
	}
	return ip.Unmap(), nil
}
