package krpc

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"node/internal/testutil"
)

// The fast path keeps at most maxWant "want" entries in its fixed array; a
// longer list gives up on it, and Parse still reads every entry.
func TestFastPathWantBound(t *testing.T) {
	target := idB
	query := func(n int) []byte {
		want := make([]string, n)
		for i := range want {
			want[i] = fmt.Sprintf("n%d", i)
		}
		return encode(t, &Msg{T: "aa", Y: KindQuery, Q: MethodFindNode, A: &Args{ID: idA, Target: &target, Want: want}})
	}
	var q queryBuf
	if !q.decode(query(maxWant)) || len(q.m.A.Want) != maxWant {
		t.Fatalf("fast path refused %d want entries, its bound", maxWant)
	}
	over := query(maxWant + 1)
	if q.decode(over) {
		t.Fatalf("fast path took %d want entries, bound is %d", maxWant+1, maxWant)
	}
	m, err := Parse(over)
	if err != nil || len(m.A.Want) != maxWant+1 {
		t.Fatalf("Parse of %d want entries: %v, %+v", maxWant+1, err, m.A)
	}
}

// The fast path reads integers and string lengths of at most maxIntDigits
// digits, so they cannot overflow int64; longer ones go to Parse.
func TestFastPathIntDigitsBound(t *testing.T) {
	digits := func(n int) string { return "1" + strings.Repeat("0", n-1) }
	for _, tt := range []struct {
		n  int
		ok bool
	}{{maxIntDigits, true}, {maxIntDigits + 1, false}} {
		d := decoder{b: []byte("i" + digits(tt.n) + "e")}
		if _, ok := d.int(); ok != tt.ok {
			t.Errorf("int of %d digits: ok = %v, want %v", tt.n, ok, tt.ok)
		}
		// The length prefix is checked before the string is: a short
		// buffer with a long prefix is refused either way, so only the
		// over-long case says anything.
		if !tt.ok {
			d = decoder{b: []byte(digits(tt.n) + ":x")}
			if _, ok := d.str(); ok {
				t.Errorf("str with a %d-digit length accepted", tt.n)
			}
		}
	}
	// A query with a 19-digit integer is still read, by Parse.
	b := encode(t, &Msg{T: "aa", Y: KindQuery, Q: MethodPing, A: &Args{ID: idA, NoSeed: 1e18}})
	var q queryBuf
	if q.decode(b) {
		t.Fatal("fast path took a 19-digit integer")
	}
	if m, err := Parse(b); err != nil || m.A.NoSeed != 1e18 {
		t.Fatalf("Parse: %v, %+v", err, m.A)
	}
}

// With MaxInflight unset, DefaultMaxInflight queries may be outstanding and
// the next is refused.
func TestDefaultMaxInflight(t *testing.T) {
	silent := listen(t)
	a := newTransport(t, Config{Timeout: time.Minute})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	chs := make([]<-chan queryResult, DefaultMaxInflight)
	for i := range chs {
		chs[i] = goQuery(a, ctx, addrOf(silent))
	}
	testutil.WaitFor(t, 20*time.Second, "DefaultMaxInflight queries in flight", func() bool {
		return a.Stats().QueriesOut == DefaultMaxInflight
	})
	// Refused at once; were it sent, the short deadline ends the wait.
	if _, err := a.Query(testCtx(t, time.Second), addrOf(silent), MethodPing, &Args{ID: idA}); !errors.Is(err, ErrTooManyInflight) {
		t.Errorf("query %d = %v, want ErrTooManyInflight", DefaultMaxInflight+1, err)
	}
	cancel()
	for _, ch := range chs {
		recvResult(t, ch, 10*time.Second)
	}
}

// MaxInflight above maxInflight is cut to it: the transaction table stays
// well inside the transaction ID space whatever the caller asks for.
func TestMaxInflightCap(t *testing.T) {
	for _, ask := range []int{maxInflight, maxInflight + 1, 1 << 30} {
		tr := newTransport(t, Config{MaxInflight: ask})
		if tr.cfg.MaxInflight != maxInflight {
			t.Errorf("MaxInflight %d became %d, want %d", ask, tr.cfg.MaxInflight, maxInflight)
		}
	}
}

// With MaxPacket unset, a datagram of DefaultMaxPacket bytes is read and
// one byte more is dropped unread.
func TestDefaultMaxPacket(t *testing.T) {
	b := newTransport(t, Config{Handler: func(netip.AddrPort, *Msg) *Msg {
		return &Msg{R: &Return{ID: idB}}
	}})
	raw := listen(t)
	// A valid ping padded with an unknown key to exactly n bytes.
	ping := func(n int) []byte {
		head := "d1:ad2:id20:" + id20 + "e1:q4:ping1:t2:aa1:y1:q1:z"
		pad := n - len(head) - len("e")
		for d := 1; ; d++ { // the length prefix eats into the padding
			s := fmt.Sprintf("%d:", pad-d-1)
			if len(s) == d+1 {
				return []byte(head + s + strings.Repeat("x", pad-d-1) + "e")
			}
		}
	}
	exact, over := ping(DefaultMaxPacket), ping(DefaultMaxPacket+1)
	if len(exact) != DefaultMaxPacket || len(over) != DefaultMaxPacket+1 {
		t.Fatalf("padding: %d, %d", len(exact), len(over))
	}
	send(t, raw, b.LocalAddr(), over)
	expectSilence(t, raw, 200*time.Millisecond)
	testutil.WaitFor(t, 2*time.Second, "oversized counted", func() bool { return b.Stats().Oversized == 1 })
	send(t, raw, b.LocalAddr(), exact)
	if m, _ := readMsg(t, raw, 2*time.Second); m.Y != KindResponse || m.T != "aa" {
		t.Errorf("answer to a %d-byte ping: %+v", DefaultMaxPacket, m)
	}
}

// With Timeout unset, a query nobody answers gives up with ErrTimeout, and
// not before DefaultTimeout: its slot in the table is held that long.
func TestDefaultTimeout(t *testing.T) {
	silent := listen(t)
	a := newTransport(t, Config{})
	start := time.Now()
	_, err := a.Query(testCtx(t, 4*DefaultTimeout), addrOf(silent), MethodPing, &Args{ID: idA})
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("Query = %v, want ErrTimeout", err)
	}
	if d := time.Since(start); d < DefaultTimeout {
		t.Errorf("timed out after %v, before DefaultTimeout", d)
	}
}
