package tracker

import (
	"net/netip"
	"testing"
)

// An IPv6 address that carries an IPv4 one (NAT64, 6to4, the old
// IPv4-compatible and IPv4-translated forms) is as local as the IPv4
// address: a translator on the way delivers to it.
func TestLocalityOfEmbeddedIPv4(t *testing.T) {
	for _, tc := range []struct {
		addr string
		want locality
	}{
		{"127.0.0.1", localLoopback},
		{"::1", localLoopback},
		{"::", localLoopback},
		{"::ffff:127.0.0.1", localLoopback},
		{"192.168.1.1", localPrivate},
		{"8.8.8.8", localPublic},
		{"2001:4860::8888", localPublic},
		{"fd00::1", localPrivate},

		{"64:ff9b::127.0.0.1", localLoopback},
		{"64:ff9b::192.168.1.1", localPrivate},
		{"64:ff9b::10.0.0.1", localPrivate},
		{"64:ff9b::8.8.8.8", localPublic},
		{"64:ff9b:1::192.168.1.1", localPrivate},
		{"64:ff9b:1::127.0.0.1", localLoopback},
		{"64:ff9b:1:7f00:1::", localLoopback}, // /48 place: 127.0.0.1
		{"64:ff9b:1::8.8.8.8", localPrivate},  // local use: never public
		{"2002:c0a8:101::1", localPrivate},    // 6to4 of 192.168.1.1
		{"2002:7f00:1::1", localLoopback},     // of 127.0.0.1
		{"2002:808:808::1", localPublic},      // of 8.8.8.8
		{"::127.0.0.1", localLoopback},        // IPv4-compatible
		{"::192.168.1.1", localPrivate},
		{"::8.8.8.8", localPublic},
		{"::ffff:0:127.0.0.1", localLoopback}, // IPv4-translated
		{"::ffff:0:10.1.2.3", localPrivate},
		{"::ffff:0:8.8.8.8", localPublic},
	} {
		if got := localityOf(netip.MustParseAddr(tc.addr)); got != tc.want {
			t.Errorf("localityOf(%s) = %s, want %s", tc.addr, localityName[got], localityName[tc.want])
		}
	}
}
