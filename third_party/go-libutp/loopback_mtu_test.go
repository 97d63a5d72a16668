package utp

import (
	"bytes"
	"io"
	"net"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestUDPMTU(t *testing.T) {
	for _, c := range []struct {
		ip   string
		want int
	}{
		{"127.0.0.1", LoopbackUDPMTU},
		{"127.1.2.3", LoopbackUDPMTU},
		{"::1", LoopbackUDPMTU},
		{"::ffff:127.0.0.1", LoopbackUDPMTU},
		{"192.0.2.1", 1402},
		{"128.0.0.1", 1402},
		{"::2", 1232},
		{"2001:db8::1", 1232},
		{"::ffff:192.0.2.1", 1402}, // go-libutp passes it as IPv4
	} {
		if got := udpMTU(&net.UDPAddr{IP: net.ParseIP(c.ip), Port: 6881}); got != c.want {
			t.Errorf("%s: MTU %d, want %d", c.ip, got, c.want)
		}
	}
}

// TestLoopbackDatagrams: a transfer between two loopback sockets goes in
// datagrams larger than an Ethernet frame, and arrives intact.
func TestLoopbackDatagrams(t *testing.T) {
	for _, network := range []string{"udp4", "udp6"} {
		t.Run(network, func(t *testing.T) {
			host := "127.0.0.1:0"
			if network == "udp6" {
				host = "[::1]:0"
			}
			a, err := NewSocket(network, host)
			require.NoError(t, err)
			defer a.Close()
			b, err := NewSocket(network, host)
			require.NoError(t, err)
			defer b.Close()
			// As node's sockets do: with the kernel's default buffer
			// (208 KiB) a few datagrams of this size fill it, and each
			// one dropped stalls the transfer for a retransmit timeout.
			for _, s := range []*Socket{a, b} {
				s.pc.(*net.UDPConn).SetReadBuffer(4 << 20)
				s.pc.(*net.UDPConn).SetWriteBuffer(4 << 20)
			}
			accepted := make(chan net.Conn, 1)
			go func() {
				c, err := b.Accept()
				if err == nil {
					accepted <- c
				}
				close(accepted)
			}()
			c, err := a.Dial(b.Addr().String())
			require.NoError(t, err)
			defer c.Close()
			d := <-accepted
			require.NotNil(t, d)
			defer d.Close()
			data := bytes.Repeat([]byte("0123456789abcdef"), 1<<18) // 4 MiB
			go func() {
				c.Write(data)
				c.Close()
			}()
			got, err := io.ReadAll(d)
			require.NoError(t, err)
			require.True(t, bytes.Equal(got, data), "received %d bytes, not the data sent", len(got))
			small, big := a.datagramsSent()
			t.Logf("%d datagrams of at most 1400 bytes, %d larger", small, big)
			// 4 MiB in Ethernet-sized datagrams would be over 3000.
			require.Less(t, small+big, 1000)
			require.Greater(t, big, 0)
		})
	}
}
