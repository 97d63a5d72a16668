//go:build cgo

package utp

import (
	"bytes"
	"encoding/binary"
	"net"
	"testing"
	"time"
)

// datagram is a uTP header: type, connection ID, seq and ack, then
// extension bytes and payload.
func datagram(typ byte, id, seq, ack uint16, rest ...byte) []byte {
	b := make([]byte, 20, 20+len(rest))
	b[0] = typ<<4 | 1
	binary.BigEndian.PutUint16(b[2:], id)
	binary.BigEndian.PutUint32(b[12:], 1<<20)
	binary.BigEndian.PutUint16(b[16:], seq)
	binary.BigEndian.PutUint16(b[18:], ack)
	return append(b, rest...)
}

// FuzzDatagrams sends the datagrams an input holds (split at "|||") to a
// uTP socket from one source, then a marker: the marker must come out of
// the DHT view, so libutp took every datagram without crashing (its
// asserts are on) and the socket still serves.
func FuzzDatagrams(f *testing.F) {
	const st, data, fin, reset, syn = 2, 0, 1, 3, 4
	sep := []byte("|||")
	f.Add(datagram(syn, 100, 1, 0))
	f.Add(bytes.Join([][]byte{datagram(syn, 101, 1, 0), datagram(data, 102, 2, 0, 'x', 'y')}, sep))
	f.Add(bytes.Join([][]byte{datagram(syn, 103, 1, 0), datagram(st, 104, 2, 5)}, sep))
	// A selective ack extension (1), and a chain that runs off the end.
	f.Add(bytes.Join([][]byte{datagram(syn, 105, 1, 0), append(datagram(data, 106, 2, 0), 1, 4, 0xff, 0xff, 0xff, 0xff)}, sep))
	f.Add(append(datagram(data, 107, 2, 0), 2, 200, 1))
	f.Add(datagram(fin, 108, 9, 9))
	f.Add(datagram(reset, 109, 9, 9))
	f.Add([]byte{0x41})
	f.Add([]byte("d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe"))
	// One socket for the whole run: libutp's state from earlier inputs
	// (half-open connections) is part of what is fuzzed.
	s := listen(f, "udp4", "127.0.124.40:0")
	sender, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 124, 41)})
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { sender.Close() })
	to := net.UDPAddrFromAddrPort(s.Addr())
	f.Fuzz(func(t *testing.T, in []byte) {
		// Fewer than go-libutp queues for the DHT view (100), or the
		// marker could be dropped.
		for i, d := range bytes.Split(in, sep) {
			if i < 32 && len(d) > 0 && len(d) < 2000 {
				_, _ = sender.WriteToUDP(d, to)
			}
		}
		marker := []byte("marker-not-utp")
		if _, err := sender.WriteToUDP(marker, to); err != nil {
			t.Fatal(err)
		}
		// Datagrams from the input that are not uTP come out first.
		got := make(chan error, 1)
		go func() {
			b := make([]byte, 2048)
			for {
				n, _, err := s.PacketConn().ReadFrom(b)
				if err != nil || bytes.Equal(b[:n], marker) {
					got <- err
					return
				}
			}
		}()
		select {
		case err := <-got:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the marker did not come through")
		}
	})
}
