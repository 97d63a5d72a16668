package dht

import (
	"bytes"
	"context"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"node/krpc"
	"node/routing"
)

func TestSampleInfohashes(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// A few nodes, so that the answer has nodes to give.
	nodes := startOurs(t, 37, 4, nil, nil)
	bootstrapAll(t, ctx, nodes)
	n := nodes[0]
	r := rand.New(rand.NewPCG(37, 1))
	c := newTestClient(t, r, 37, 100, false, false, 0)

	sample := func(t *testing.T) *krpc.Return {
		t.Helper()
		target := routing.RandomID(r)
		resp, err := c.query(ctx, n, krpc.MethodSampleInfohashes, &krpc.Args{Target: &target})
		if err != nil {
			t.Fatalf("sample_infohashes: %v", err)
		}
		ret := resp.R
		if ret.ID != n.ID() {
			t.Fatalf("r.id %v, want %v", ret.ID, n.ID())
		}
		if ret.Interval != int(SampleInterval/time.Second) {
			t.Fatalf("interval %d, want %d", ret.Interval, int(SampleInterval/time.Second))
		}
		if len(ret.Nodes) == 0 {
			t.Fatal("no nodes in the answer")
		}
		return ret
	}

	t.Run("empty store", func(t *testing.T) {
		ret := sample(t)
		// Non-nil: the key was sent, as "samples0:".
		if ret.Num != 0 || ret.Samples == nil || len(ret.Samples) != 0 {
			t.Fatalf("num %d, samples %v (nil: %v), want 0 and an empty key", ret.Num, ret.Samples, ret.Samples == nil)
		}
	})

	t.Run("after announces", func(t *testing.T) {
		const hashes = 30
		tok := c.getPeers(t, ctx, n, routing.RandomID(r)).Token // tokens are per IP, not per hash
		stored := map[routing.ID]bool{}
		for i := 0; i < hashes; i++ {
			ih := routing.RandomID(r)
			if _, err := c.query(ctx, n, krpc.MethodAnnouncePeer, &krpc.Args{InfoHash: &ih, Token: tok, Port: intp(6881)}); err != nil {
				t.Fatalf("announce %d: %v", i, err)
			}
			stored[ih] = true
		}
		ret := sample(t)
		if ret.Num != hashes {
			t.Fatalf("num %d, want %d", ret.Num, hashes)
		}
		// The store holds more than fit, so the sample is full even though
		// an empty one was served less than an interval ago.
		if len(ret.Samples) != maxSamples {
			t.Fatalf("%d samples, want %d", len(ret.Samples), maxSamples)
		}
		seen := map[routing.ID]bool{}
		for _, ih := range ret.Samples {
			if !stored[ih] {
				t.Fatalf("sampled %v, which nobody announced", ih)
			}
			if seen[ih] {
				t.Fatalf("sampled %v twice", ih)
			}
			seen[ih] = true
		}
	})

	t.Run("missing target", func(t *testing.T) {
		_, err := c.query(ctx, n, krpc.MethodSampleInfohashes, nil)
		wantCode(t, err, krpc.ErrorCodeProtocol)
	})

	// What no Transport would send: a target that is not 20 bytes is a
	// malformed query, answered 203 before the node sees it.
	t.Run("bad target", func(t *testing.T) {
		p := newRawPeer(t, 37, 101, n.Addr(), routing.RandomID(r))
		for i, target := range []string{"", "short", strings.Repeat("x", 21)} {
			tid := string(rune('a' + i))
			p.send(rawQuery(tid, krpc.MethodSampleInfohashes, rawID(p.id)+"6:target"+bs(target)))
			m, b := readReply(t, p, tid)
			if m.Y != krpc.KindError || m.E.Code != krpc.ErrorCodeProtocol {
				t.Fatalf("target of %d bytes answered %q", len(target), b)
			}
		}
	})
}

// readReply reads until the reply to tid arrives, skipping the node's own
// queries (verification pings).
func readReply(t *testing.T, p *rawPeer, tid string) (krpc.Msg, []byte) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		m, b, err := p.read(deadline)
		if err != nil {
			t.Fatalf("no reply to %q: %v", tid, err)
		}
		if m.Y != krpc.KindQuery && m.T == tid {
			return m, b
		}
	}
}

// The empty sample is on the wire as the key BEP 51 requires, with the
// count and interval beside it.
func TestSampleInfohashesWire(t *testing.T) {
	n := startNode(t, 38, 1, nil)
	r := rand.New(rand.NewPCG(38, 1))
	p := newRawPeer(t, 38, 2, n.Addr(), routing.RandomID(r))
	target := routing.RandomID(r)
	p.send(rawQuery("s", krpc.MethodSampleInfohashes, rawID(p.id)+"6:target"+bs(string(target[:]))))
	_, b := readReply(t, p, "s")
	if !bytes.Contains(b, []byte("8:intervali60e")) || !bytes.Contains(b, []byte("7:samples0:")) {
		t.Fatalf("answer %q lacks interval or the empty samples key", b)
	}
}

// "samples" must be whole info-hashes; a truncated one makes the message
// malformed.
func TestSamplesDecode(t *testing.T) {
	id20 := "abcdefghij0123456789"
	for _, l := range []int{1, 19, 21, 39} {
		b := "d1:rd2:id20:" + id20 + "7:samples" + bs(strings.Repeat("x", l)) + "e1:t2:aa1:y1:re"
		if _, err := krpc.Parse([]byte(b)); err == nil {
			t.Errorf("samples of %d bytes parsed", l)
		}
	}
	b := "d1:rd8:intervali60e3:numi2e2:id20:" + id20 + "7:samples40:" + strings.Repeat("a", 20) + strings.Repeat("b", 20) + "e1:t2:aa1:y1:re"
	m, err := krpc.Parse([]byte(b))
	if err != nil {
		t.Fatal(err)
	}
	if got := m.R.Samples; len(got) != 2 || got[0] != routing.ID([]byte(strings.Repeat("a", 20))) || got[1] != routing.ID([]byte(strings.Repeat("b", 20))) {
		t.Fatalf("samples %v", got)
	}
	if m.R.Num != 2 || m.R.Interval != 60 {
		t.Fatalf("num %d interval %d", m.R.Num, m.R.Interval)
	}
}

// One draw is served for the whole interval, then redrawn.
func TestPeerStoreSamples(t *testing.T) {
	t0 := time.Date(2024, 1, 2, 3, 4, 5, 0, time.UTC)
	s := newPeerStore(100, 4, time.Hour)
	r := rand.New(rand.NewPCG(39, 1))
	for i := 0; i < 60; i++ {
		s.add(psHash(i), psPeer(i), t0)
	}
	num, first := s.samples(r, t0, time.Minute, 20)
	if num != 60 || len(first) != 20 {
		t.Fatalf("num %d, %d samples", num, len(first))
	}
	first[0] = routing.ID{} // the caller's copy is its own
	_, again := s.samples(r, t0.Add(59*time.Second), time.Minute, 20)
	if again[0] == (routing.ID{}) || !slices.Equal(again[1:], first[1:]) {
		t.Fatal("sample changed within the interval")
	}
	_, later := s.samples(r, t0.Add(time.Minute), time.Minute, 20)
	if slices.Equal(later, again) {
		t.Fatal("sample not redrawn after the interval")
	}
	// Fewer hashes than fit: all of them.
	small := newPeerStore(100, 4, time.Hour)
	small.add(psHash(1), psPeer(1), t0)
	if num, got := small.samples(r, t0, time.Minute, 20); num != 1 || len(got) != 1 || got[0] != psHash(1) {
		t.Fatalf("small store: num %d, samples %v", num, got)
	}
}
