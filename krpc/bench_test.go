package krpc

import (
	"net/netip"
	"testing"
)

// getPeersResponse is a full-sized get_peers answer: 8 nodes and 8 peers.
func getPeersResponse() Msg {
	r := &Return{ID: id("mnopqrstuvwxyz123456"), Token: "aoeusnth"}
	for i := range 8 {
		n := node4
		n.ID[0] = byte(i)
		n.Addr = netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}), 6881)
		r.Nodes = append(r.Nodes, n)
		r.Values = append(r.Values, netip.AddrPortFrom(netip.AddrFrom4([4]byte{192, 168, 0, byte(i)}), 51413))
	}
	return Msg{T: "\x12\x34", Y: KindResponse, R: r, V: "KR01"}
}

func BenchmarkParseGetPeers(b *testing.B) {
	in := []byte(goldens[4].want) // bep5/get_peers/query
	if goldens[4].msg.Q != MethodGetPeers {
		b.Fatal("golden table reordered")
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		if _, err := Parse(in); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseGetPeersResponse(b *testing.B) {
	m := getPeersResponse()
	in := encode(b, &m)
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		if _, err := Parse(in); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendGetPeersResponse(b *testing.B) {
	m := getPeersResponse()
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		buf = m.Append(buf[:0])
	}
	b.SetBytes(int64(len(buf)))
}

// The fast path the Transport takes for a query (Parse is the fallback).
func BenchmarkDecodeQueryGetPeers(b *testing.B) {
	in := []byte(goldens[4].want) // bep5/get_peers/query
	q := queryBuf{borrowStrings: true}
	b.ReportAllocs()
	b.SetBytes(int64(len(in)))
	for b.Loop() {
		if !q.decode(in) {
			b.Fatal("refused")
		}
	}
}
