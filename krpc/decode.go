package krpc

import (
	"bytes"
	"unsafe"

	"node/krpc/nodeid"
)

// A fast path for decoding incoming queries, the bulk of what a serving
// node reads. It accepts only queries in canonical bencoding (keys sorted
// and unique, no leading zeros, every known key of its expected type, at
// most MaxDepth deep) and decodes them into storage a reader reuses, so a
// query costs no allocation. Anything else — responses, errors, a query
// with a quirk the reflection decoder would tolerate or refuse — makes it
// give up, and the caller falls back to Parse. The rule that keeps the two
// paths one decoder: whatever decodeQuery accepts, Parse accepts with an
// equal result (FuzzDecodeQuery checks it).

// queryBuf holds one decoded query and the values its pointers refer to.
type queryBuf struct {
	m             Msg
	a             Args
	target, ih    nodeid.ID
	port          int
	ip            Addr
	want          [maxWant]string
	borrowStrings bool // strings alias the datagram instead of copying it
}

// clone returns a copy of q that shares no memory with it (strings aside,
// which are copies unless borrowed).
func (q *queryBuf) clone() *queryBuf {
	c := new(queryBuf)
	*c = *q
	m := &c.m
	if m.A != nil {
		m.A = &c.a
		if c.a.Target != nil {
			c.a.Target = &c.target
		}
		if c.a.InfoHash != nil {
			c.a.InfoHash = &c.ih
		}
		if c.a.Port != nil {
			c.a.Port = &c.port
		}
		if c.a.Want != nil {
			c.a.Want = c.want[:len(c.a.Want):len(c.a.Want)]
		}
	}
	if m.IP != nil {
		m.IP = &c.ip
	}
	return c
}

// maxWant is how many "want" entries the fast path keeps; BEP 32 defines
// two. A longer list goes to Parse.
const maxWant = 4

// Interned values of the short strings every query carries, so that
// decoding them allocates nothing even when strings are copied.
var (
	methodNames = []string{MethodPing, MethodFindNode, MethodGetPeers, MethodAnnouncePeer, MethodSampleInfohashes}
	wantNames   = []string{"n4", "n6"}
)

// decodeQuery decodes b into q and reports whether it could. With
// q.borrowStrings, q's strings point into b: they are valid only while b
// is unchanged.
func (q *queryBuf) decode(b []byte) bool {
	borrow := q.borrowStrings
	*q = queryBuf{borrowStrings: borrow}
	if len(b) < minMsgLen || b[0] != 'd' || b[len(b)-1] != 'e' {
		return false
	}
	d := decoder{b: b, i: 1}
	var last []byte
	for {
		k, more, ok := d.key(&last)
		if !ok {
			return false
		}
		if !more {
			break
		}
		switch string(k) {
		case "a":
			if !q.decodeArgs(&d) {
				return false
			}
		case "ip":
			s, ok := d.str()
			if !ok || (len(s) != PeerLen && len(s) != Peer6Len) {
				return false
			}
			ap, _ := ParseAddrPort(s)
			q.ip = Addr(ap)
			q.m.IP = &q.ip
		case "q":
			s, ok := d.str()
			if !ok {
				return false
			}
			q.m.Q = q.intern(s, methodNames)
		case "ro":
			n, ok := d.int()
			if !ok {
				return false
			}
			q.m.RO = int(n)
		case "t":
			s, ok := d.str()
			if !ok {
				return false
			}
			q.m.T = q.string(s)
		case "v":
			s, ok := d.str()
			if !ok {
				return false
			}
			q.m.V = q.string(s)
		case "y":
			s, ok := d.str()
			if !ok || string(s) != KindQuery {
				return false
			}
			q.m.Y = KindQuery
		case "e", "r":
			return false // not a plain query: Parse decides
		default:
			if !d.skip(1) {
				return false
			}
		}
	}
	if d.i != len(b) {
		return false
	}
	// Parse's validation, for a query; a failure goes to Parse for its
	// error.
	m := &q.m
	return m.Y == KindQuery && m.T != "" && len(m.T) <= MaxTransactionIDLen &&
		m.Q != "" && m.A != nil && !m.A.ID.IsZero()
}

func (q *queryBuf) decodeArgs(d *decoder) bool {
	if d.i >= len(d.b) || d.b[d.i] != 'd' {
		return false
	}
	d.i++
	a := &q.a
	var last []byte
	for {
		k, more, ok := d.key(&last)
		if !ok {
			return false
		}
		if !more {
			break
		}
		switch string(k) {
		case "id":
			if !d.id(&a.ID) {
				return false
			}
		case "info_hash":
			if !d.id(&q.ih) {
				return false
			}
			a.InfoHash = &q.ih
		case "target":
			if !d.id(&q.target) {
				return false
			}
			a.Target = &q.target
		case "token":
			s, ok := d.str()
			if !ok {
				return false
			}
			a.Token = q.string(s)
		case "port":
			n, ok := d.int()
			if !ok {
				return false
			}
			q.port = int(n)
			a.Port = &q.port
		case "implied_port", "noseed", "scrape", "seed":
			n, ok := d.int()
			if !ok {
				return false
			}
			switch string(k) {
			case "implied_port":
				a.ImpliedPort = int(n)
			case "noseed":
				a.NoSeed = int(n)
			case "scrape":
				a.Scrape = int(n)
			default:
				a.Seed = int(n)
			}
		case "want":
			if !q.decodeWant(d) {
				return false
			}
		default:
			if !d.skip(2) {
				return false
			}
		}
	}
	q.m.A = a
	return true
}

func (q *queryBuf) decodeWant(d *decoder) bool {
	if d.i >= len(d.b) || d.b[d.i] != 'l' {
		return false
	}
	d.i++
	n := 0
	for {
		if d.i >= len(d.b) {
			return false
		}
		if d.b[d.i] == 'e' {
			d.i++
			break
		}
		s, ok := d.str()
		if !ok || n == maxWant {
			return false
		}
		q.want[n] = q.intern(s, wantNames)
		n++
	}
	// Non-nil even when empty, as the reflection decoder leaves it.
	q.a.Want = q.want[:n:n]
	return true
}

// string returns s as a string, aliasing it when strings are borrowed.
func (q *queryBuf) string(s []byte) string {
	if len(s) == 0 {
		return ""
	}
	if q.borrowStrings {
		return unsafe.String(unsafe.SliceData(s), len(s))
	}
	return string(s)
}

// intern returns the member of known equal to s, else q.string(s).
func (q *queryBuf) intern(s []byte, known []string) string {
	for _, k := range known {
		if string(s) == k {
			return k
		}
	}
	return q.string(s)
}

// decoder reads canonical bencoding from b at i. Each method returns false
// when what is at i is not the canonical form it expects.
type decoder struct {
	b []byte
	i int
}

// maxIntDigits keeps integers well inside int64; longer ones go to Parse.
const maxIntDigits = 18

// key reads the next key of a dictionary whose 'd' has been read. more
// is false at the dictionary's end (its 'e' is consumed); ok is false on
// bad input, which includes a key not strictly after last: canonical
// bencoding sorts keys and has no duplicates.
func (d *decoder) key(last *[]byte) (k []byte, more, ok bool) {
	if d.i >= len(d.b) {
		return nil, false, false
	}
	if d.b[d.i] == 'e' {
		d.i++
		return nil, false, true
	}
	k, ok = d.str()
	if !ok || (*last != nil && bytes.Compare(k, *last) <= 0) {
		return nil, false, false
	}
	*last = k
	return k, true, true
}

// str reads a string: a length without leading zeros, ':', the bytes.
func (d *decoder) str() ([]byte, bool) {
	b, i := d.b, d.i
	if i >= len(b) || b[i] < '0' || b[i] > '9' {
		return nil, false
	}
	n := 0
	start := i
	for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		if i-start == maxIntDigits {
			return nil, false
		}
		n = n*10 + int(b[i]-'0')
	}
	if (b[start] == '0' && i-start > 1) || i >= len(b) || b[i] != ':' || n > len(b)-i-1 {
		return nil, false
	}
	i++
	d.i = i + n
	return b[i : i+n], true
}

// int reads an integer: 'i', an optional '-', digits without leading
// zeros (and no "-0"), 'e'.
func (d *decoder) int() (int64, bool) {
	b, i := d.b, d.i
	if i >= len(b) || b[i] != 'i' {
		return 0, false
	}
	i++
	neg := i < len(b) && b[i] == '-'
	if neg {
		i++
	}
	start := i
	var n int64
	for ; i < len(b) && b[i] >= '0' && b[i] <= '9'; i++ {
		if i-start == maxIntDigits {
			return 0, false
		}
		n = n*10 + int64(b[i]-'0')
	}
	digits := i - start
	if digits == 0 || i >= len(b) || b[i] != 'e' ||
		(b[start] == '0' && (digits > 1 || neg)) {
		return 0, false
	}
	d.i = i + 1
	if neg {
		n = -n
	}
	return n, true
}

// id reads a 20-byte string into id.
func (d *decoder) id(id *nodeid.ID) bool {
	s, ok := d.str()
	if !ok || len(s) != nodeid.Len {
		return false
	}
	copy(id[:], s)
	return true
}

// skip passes over one value of a key we do not know, at nesting depth
// depth (the enclosing dict's). It is as strict as the reflection decoder
// is with such values (dict keys strictly sorted) and stricter elsewhere.
func (d *decoder) skip(depth int) bool {
	if d.i >= len(d.b) {
		return false
	}
	switch c := d.b[d.i]; {
	case c == 'i':
		_, ok := d.int()
		return ok
	case c >= '0' && c <= '9':
		_, ok := d.str()
		return ok
	case c == 'l' || c == 'd':
		if depth+1 > MaxDepth {
			return false
		}
		d.i++
		var last []byte
		for {
			if c == 'd' {
				_, more, ok := d.key(&last)
				if !ok || !more {
					return ok
				}
			} else if d.i >= len(d.b) {
				return false
			} else if d.b[d.i] == 'e' {
				d.i++
				return true
			}
			if !d.skip(depth + 1) {
				return false
			}
		}
	}
	return false
}
