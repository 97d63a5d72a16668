package main

// In-process memory figures: heap bytes per routing-table entry and per
// stored peer, ours and anacrolix's, each the live-heap difference (after
// GC) over filling the structure.

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"runtime"
	"sync"
	"time"

	adht "github.com/anacrolix/dht/v2"
	akrpc "github.com/anacrolix/dht/v2/krpc"
	peer_store "github.com/anacrolix/dht/v2/peer-store"

	"node/dht"
	"node/internal/dhttest"
	"node/krpc"
	"node/routing"
)

func liveHeap() uint64 {
	runtime.GC()
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// bucketIDs returns perBucket IDs for every prefix length shared with
// self: enough to fill every bucket a table around self can have.
func bucketIDs(self routing.ID, perBucket int, r *rand.Rand) []routing.ID {
	var out []routing.ID
	for depth := 0; depth < routing.IDLen*8-8; depth++ {
		for range perBucket {
			id := routing.RandomID(r)
			for b := 0; b < depth; b++ { // copy self's first depth bits
				mask := byte(0x80 >> (b % 8))
				id[b/8] = id[b/8]&^mask | self[b/8]&mask
			}
			mask := byte(0x80 >> (depth % 8)) // and differ at bit depth
			id[depth/8] = id[depth/8]&^mask | ^self[depth/8]&mask
			out = append(out, id)
		}
	}
	return out
}

func privAddr(i int) netip.AddrPort {
	return netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}), 6881)
}

// tableMemory fills our routing.Table (the node's configuration) and
// anacrolix's server table with a full set of buckets.
func tableMemory() (ours, theirs float64, oursN, theirsN int, err error) {
	r := rand.New(rand.NewPCG(5, 6))
	self := routing.RandomID(r)
	ids := bucketIDs(self, routing.K, r)
	now := time.Now()

	before := liveHeap()
	t := routing.New(self, routing.Config{RequireSecureIDs: true, MaxPerSubnet: 1})
	for i, id := range ids {
		t.Responded(routing.Contact{ID: id, Addr: privAddr(i)}, now)
	}
	after := liveHeap()
	oursN = t.Len()
	ours = float64(after-before) / float64(oursN)
	runtime.KeepAlive(t)

	pc, err := net.ListenPacket("udp4", "127.0.100.3:0")
	if err != nil {
		return
	}
	cfg := adht.NewDefaultServerConfig()
	cfg.Conn = pc
	cfg.NodeId = akrpc.ID(self)
	dhttest.Configure(cfg, func() []netip.AddrPort { return nil })
	s, err := adht.NewServer(cfg)
	if err != nil {
		return
	}
	defer s.Close()
	before = liveHeap()
	for i, id := range ids {
		a := privAddr(i).Addr().As4()
		_ = s.AddNode(akrpc.NodeInfo{ID: akrpc.ID(id), Addr: akrpc.NodeAddr{IP: a[:], Port: 6881}})
	}
	after = liveHeap()
	theirsN = s.Stats().Nodes
	theirs = float64(after-before) / float64(theirsN)
	return
}

// peerMemory stores peers: ours through a node (announce_peer over
// loopback, since the store lives inside the node), anacrolix's in its
// shipped peer_store.InMemory.
func peerMemory(hashes, perHash int) (ours, theirs float64, oursN, theirsN int, err error) {
	n, err := dht.New(dht.Config{Listen: "127.0.100.4:0", Bootstrap: []string{}})
	if err != nil {
		return
	}
	defer n.Close()
	ihs := infoHashes(hashes)
	const sources = 16
	// Clients and their garbage are made before the baseline, and their
	// buffers are small next to the store.
	var trs []*krpc.Transport
	for s := range sources {
		pc, lerr := net.ListenUDP("udp4", net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 103, byte(s + 1)}), 0)))
		if lerr != nil {
			return 0, 0, 0, 0, lerr
		}
		tr, lerr := krpc.New(krpc.Config{Conn: pc, Timeout: 2 * time.Second})
		if lerr != nil {
			pc.Close()
			return 0, 0, 0, 0, lerr
		}
		defer tr.Close()
		trs = append(trs, tr)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	r := rand.New(rand.NewPCG(8, 9))
	ids := make([]routing.ID, sources)
	tokens := make([]string, sources)
	for s, tr := range trs {
		ids[s] = routing.RandomID(r)
		resp, qerr := tr.Query(ctx, n.Addr(), krpc.MethodGetPeers, &krpc.Args{ID: ids[s], InfoHash: &ihs[0]})
		if qerr != nil {
			return 0, 0, 0, 0, qerr
		}
		tokens[s] = resp.R.Token // one token serves every info-hash from this IP
	}
	before := liveHeap()
	var wg sync.WaitGroup
	errs := make(chan error, sources*4)
	for s, tr := range trs {
		for g := range 4 { // 4 announcers per source
			wg.Add(1)
			go func() {
				defer wg.Done()
				for h := range hashes {
					for p := g; p < perHash; p += 4 {
						if p%sources != s {
							continue
						}
						port := 10000 + p
						if _, qerr := tr.Query(ctx, n.Addr(), krpc.MethodAnnouncePeer, &krpc.Args{ID: ids[s], InfoHash: &ihs[h], Token: tokens[s], Port: &port}); qerr != nil {
							errs <- qerr
							return
						}
					}
				}
			}()
		}
	}
	wg.Wait()
	select {
	case err = <-errs:
		return
	default:
	}
	after := liveHeap()
	st, err := n.Stats(ctx)
	if err != nil {
		return
	}
	oursN = st.Peers
	if oursN == 0 {
		return 0, 0, 0, 0, fmt.Errorf("no peers stored")
	}
	ours = float64(after-before) / float64(oursN)

	var ps peer_store.InMemory
	before = liveHeap()
	i := 0
	for h := range hashes {
		for range perHash {
			// Distinct IPs: InMemory keys peers by IP alone.
			a := privAddr(i).Addr().As4()
			ps.AddPeer(peer_store.InfoHash(ihs[h]), akrpc.NodeAddr{IP: a[:], Port: 10000 + i%1000})
			i++
		}
	}
	after = liveHeap()
	for _, v := range ps.GetAll() {
		theirsN += len(v)
	}
	theirs = float64(after-before) / float64(theirsN)
	runtime.KeepAlive(&ps)
	return
}
