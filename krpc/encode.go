package krpc

import (
	"net/netip"
	"strconv"

	"node/krpc/nodeid"
)

// Hand-written bencoding of Msg. It produces exactly the bytes the
// reflection encoder (bencode.Marshal) does for the same struct, which
// TestAppendMatchesReflection and FuzzParse hold it to, but without
// reflection or intermediate slices: an answer can be encoded into a
// reused buffer with no allocation. Keys are written in bencode's sorted
// order, which is the order of the struct tags sorted bytewise.

func appendMsg(b []byte, m *Msg) []byte {
	b = append(b, 'd')
	if m.A != nil {
		b = append(b, "1:a"...)
		b = appendArgs(b, m.A)
	}
	if m.E != nil {
		b = append(b, "1:e"...)
		b = appendError(b, m.E)
	}
	if m.IP != nil {
		b = append(b, "2:ip"...)
		b = appendCompactAddr(b, netip.AddrPort(*m.IP))
	}
	if m.Q != "" {
		b = append(b, "1:q"...)
		b = appendString(b, m.Q)
	}
	if m.R != nil {
		b = append(b, "1:r"...)
		b = appendReturn(b, m.R)
	}
	if m.RO != 0 {
		b = append(b, "2:ro"...)
		b = appendInt(b, int64(m.RO))
	}
	b = append(b, "1:t"...)
	b = appendString(b, m.T)
	if m.V != "" {
		b = append(b, "1:v"...)
		b = appendString(b, m.V)
	}
	b = append(b, "1:y"...)
	b = appendString(b, m.Y)
	return append(b, 'e')
}

func appendArgs(b []byte, a *Args) []byte {
	b = append(b, 'd')
	b = append(b, "2:id"...)
	b = appendID(b, &a.ID)
	if a.ImpliedPort != 0 {
		b = append(b, "12:implied_port"...)
		b = appendInt(b, int64(a.ImpliedPort))
	}
	if a.InfoHash != nil {
		b = append(b, "9:info_hash"...)
		b = appendID(b, a.InfoHash)
	}
	if a.NoSeed != 0 {
		b = append(b, "6:noseed"...)
		b = appendInt(b, int64(a.NoSeed))
	}
	if a.Port != nil {
		b = append(b, "4:port"...)
		b = appendInt(b, int64(*a.Port))
	}
	if a.Scrape != 0 {
		b = append(b, "6:scrape"...)
		b = appendInt(b, int64(a.Scrape))
	}
	if a.Seed != 0 {
		b = append(b, "4:seed"...)
		b = appendInt(b, int64(a.Seed))
	}
	if a.Target != nil {
		b = append(b, "6:target"...)
		b = appendID(b, a.Target)
	}
	if a.Token != "" {
		b = append(b, "5:token"...)
		b = appendString(b, a.Token)
	}
	if a.Want != nil {
		b = append(b, "4:wantl"...)
		for _, w := range a.Want {
			b = appendString(b, w)
		}
		b = append(b, 'e')
	}
	return append(b, 'e')
}

func appendReturn(b []byte, r *Return) []byte {
	b = append(b, 'd')
	if r.BFpe != nil {
		b = append(b, "4:BFpe"...)
		b = appendBytes(b, r.BFpe[:])
	}
	if r.BFsd != nil {
		b = append(b, "4:BFsd"...)
		b = appendBytes(b, r.BFsd[:])
	}
	b = append(b, "2:id"...)
	b = appendID(b, &r.ID)
	if r.Interval != 0 {
		b = append(b, "8:interval"...)
		b = appendInt(b, int64(r.Interval))
	}
	if r.Nodes != nil {
		b = append(b, "5:nodes"...)
		b = appendNodeString(b, r.Nodes, true)
	}
	if r.Nodes6 != nil {
		b = append(b, "6:nodes6"...)
		b = appendNodeString(b, r.Nodes6, false)
	}
	if r.Num != 0 {
		b = append(b, "3:num"...)
		b = appendInt(b, int64(r.Num))
	}
	if r.Samples != nil {
		b = append(b, "7:samples"...)
		b = strconv.AppendInt(b, int64(len(r.Samples)*nodeid.Len), 10)
		b = append(b, ':')
		for i := range r.Samples {
			b = append(b, r.Samples[i][:]...)
		}
	}
	if r.Token != "" {
		b = append(b, "5:token"...)
		b = appendString(b, r.Token)
	}
	if r.Values != nil {
		b = append(b, "6:valuesl"...)
		for _, p := range r.Values {
			if p.IsValid() {
				b = appendCompactAddr(b, p)
			}
		}
		b = append(b, 'e')
	}
	return append(b, 'e')
}

func appendError(b []byte, e *Error) []byte {
	b = append(b, 'l')
	b = appendInt(b, int64(e.Code))
	b = appendString(b, e.Msg)
	return append(b, 'e')
}

// appendNodeString writes the nodes of one family as one compact string,
// skipping the others exactly as appendNodes does.
func appendNodeString(b []byte, ns []NodeInfo, is4 bool) []byte {
	size := NodeInfo6Len
	if is4 {
		size = NodeInfoLen
	}
	n := 0
	for i := range ns {
		if a := ns[i].Addr; a.IsValid() && a.Addr().Unmap().Is4() == is4 {
			n++
		}
	}
	b = strconv.AppendInt(b, int64(n*size), 10)
	b = append(b, ':')
	return appendNodes(b, ns, is4)
}

// appendCompactAddr writes ap as a compact address string.
func appendCompactAddr(b []byte, ap netip.AddrPort) []byte {
	var buf [Peer6Len]byte
	return appendBytes(b, AppendAddrPort(buf[:0], ap))
}

func appendID(b []byte, id *nodeid.ID) []byte {
	b = append(b, "20:"...)
	return append(b, id[:]...)
}

func appendString(b []byte, s string) []byte {
	b = strconv.AppendInt(b, int64(len(s)), 10)
	b = append(b, ':')
	return append(b, s...)
}

func appendBytes(b, s []byte) []byte {
	b = strconv.AppendInt(b, int64(len(s)), 10)
	b = append(b, ':')
	return append(b, s...)
}

func appendInt(b []byte, n int64) []byte {
	b = append(b, 'i')
	b = strconv.AppendInt(b, n, 10)
	return append(b, 'e')
}
