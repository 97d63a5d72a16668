package peer

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"time"

	"github.com/anacrolix/torrent/mse"
	"go.uber.org/zap"

	"node/metadata"
	"node/peer/wire"
)

// Our BEP 10 extension IDs: the numbers peers must use to reach us.
const extMetadataID = 1

// ourReqq is the reqq of our BEP 10 handshake: how many block requests a
// peer may have outstanding with us; libtorrent's is 2000 too. A
// leecher's pipeline must cover its round trip at its rate: 250 blocks
// (4 MiB) cap a leecher 100 ms away at 40 MiB/s, and held Transmission
// 3.00 leeching from us to about 4 MiB/s. We can hold 2000 because a
// request waiting in the send queue costs a slot and a blockRead, not
// its block (see maxQueueBytes).
const ourReqq = 2000

// seedRedialAfter is how long a peer we closed because it is a seed, as
// we are, is not dialled again: two seeds have nothing to give each
// other, and a seed stays one. Twice our announce interval, so a seed
// that every lookup finds costs us one dial per two lookups.
const seedRedialAfter = 30 * time.Minute

var errBothSeeds = errors.New("a seed, as we are: nothing to exchange")

// errSelf: the handshake carried our own peer ID.
var errSelf = errors.New("connected to ourselves")

// maxMetadataAnswers bounds the ut_metadata answers (16 KiB each) queued
// to one peer. Further requests wait as a bit per metadata piece and are
// answered as the peer reads; libtorrent likewise keeps about 160 KiB of
// metadata in a peer's send buffer and queues the rest of the requests.
const maxMetadataAnswers = 8

// peerState is what the loop knows about one connected peer.
type peerState struct {
	c *conn
	// BEP 10: their ID for ut_metadata (0: they have none) and size.
	extMeta  int
	metaSize int
	reqq     int

	have         wire.Bits // nil until we know the piece count
	rawBits      []byte    // a bitfield received before we had metadata
	earlyHaves   []uint32
	numHave      int
	amChoking    bool
	amInterest   bool
	peerChoking  bool
	peerInterest bool
	unchokedAt   time.Time
	waitingSince time.Time

	// Turnover (see turnoverEvery): c.down when last seen, and when it
	// last gave us something (or connected); when we first asked it for
	// metadata since (zero: we have not).
	lastDown    int64
	usefulAt    time.Time
	metaAskedAt time.Time

	requests map[blockKey]time.Time // ours to them, outstanding
	// cancelled: requests we cancelled, with when. A late answer to one
	// is no error; a fast peer must answer each (see requestFromProgress).
	// At most maxCancelled (see pruneCancelled).
	cancelled map[blockKey]time.Time
	reqBuf    []byte        // requests being encoded by fillRequests
	blockWait time.Duration // how long it takes to answer a request (see expireRequests)
	pipe      pipeline      // how many requests to keep out (see pipeline.go)

	// metaWanted are the metadata pieces it asked for beyond
	// maxMetadataAnswers, metaWantedN how many: answered as it reads.
	metaWanted  []bool
	metaWantedN int

	// Messages BEP 3 and BEP 5 send once per connection; a have all or
	// have none counts as the bitfield.
	sawBitfield, sawPort bool

	// BEP 11 (pex.go): their ut_pex id (0: none) and BEP 10 "p" (0: not
	// given); the addresses we have told them of, and when we may send
	// the next message; when their last message was taken in, and how
	// many came too soon since.
	extPex     int
	listenPort uint16
	pexTold    map[netip.AddrPort]bool
	pexNext    time.Time
	pexAt      time.Time
	pexEarly   int
	// hinted4 and hinted6 record that it gave its other address of that
	// family (BEP 7), which each connection may do once.
	hinted4, hinted6 bool
	// BEP 6 (see fast.go): fast is whether both sides set the bit. The
	// pieces it allows us while choking us, and its suggestions, newest
	// first; a have all before we knew the piece count. allowedOut is
	// the allowed fast set we sent it, with the blocks of each piece
	// served while choked; nil until sent.
	fast       bool
	allowedIn  []int
	suggested  []int
	haveAll    bool
	allowedOut map[int]int
}

type blockKey struct {
	piece int
	begin int64
}

func (t *Torrent) ourHandshake() wire.Handshake {
	return wire.Handshake{Reserved: wire.DefaultReserved().WithFast(!t.cfg.noFast), InfoHash: t.ih, PeerID: t.peerID}
}

func (t *Torrent) checkHandshake(h wire.Handshake) error {
	if h.InfoHash != t.ih {
		return errors.New("handshake for another torrent")
	}
	if h.PeerID == t.peerID {
		return errSelf
	}
	return nil
}

// checkIncoming is checkHandshake for a connection to our listener. One
// with our peer ID is our own dial, which will learn so from our answer:
// it is counted first, so that the dial finds it counted (see selfIn).
func (t *Torrent) checkIncoming(h wire.Handshake) error {
	err := t.checkHandshake(h)
	if errors.Is(err, errSelf) {
		if n := t.selfIn.Add(1); n > maxSelfAddrs {
			t.selfIn.Add(-1)
		}
	}
	return err
}

func (t *Torrent) maxMsgLen() int {
	n := 0
	if t.info != nil {
		n = t.info.NumPieces()
	}
	return wire.MaxMessageLen(n)
}

func (t *Torrent) acceptLoop(ln net.Listener) {
	defer t.wg.Done()
	for {
		nc, err := ln.Accept()
		if err != nil {
			if t.ctx.Err() != nil || errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(50 * time.Millisecond) // temporary errors, as net/http backs off
			continue
		}
		k := ipKey(addrOf(nc.RemoteAddr()).Addr())
		budget := t.handshakesOf(nc)
		if !budget.admit(k) {
			nc.Close()
			continue
		}
		t.wg.Add(1)
		go func() {
			defer t.wg.Done()
			defer budget.done(k)
			// One deadline for the sniffing, MSE and the handshake.
			ctx, cancel := context.WithTimeout(t.ctx, t.handshakeTime())
			defer cancel()
			cc, crypto, err := t.acceptedCrypto(ctx, nc)
			if err != nil {
				nc.Close()
				return
			}
			hs, err := handshake(ctx, cc, t.ourHandshake(), false, t.checkIncoming)
			if err != nil {
				nc.Close()
				return
			}
			if mc, ok := cc.(*muxConn); ok {
				cc = mc.stream()
			}
			// t.info belongs to the loop: connected() tightens the
			// limit once the loop has the connection.
			c := newConn(cc, hs, false, wire.MaxMessageLen(0))
			c.crypto = crypto
			t.startConn(c)
		}()
	}
}

// acceptedCrypto is acceptCrypto for an incoming connection, or, for one
// a Mux routed to us, which has been through MSE already, the check that
// what it set up is allowed under our Encryption.
func (t *Torrent) acceptedCrypto(ctx context.Context, nc net.Conn) (net.Conn, mse.CryptoMethod, error) {
	if mc, ok := nc.(*muxConn); ok {
		return mc, mc.crypto, t.cfg.Encryption.admits(mc.crypto)
	}
	return acceptCrypto(ctx, nc, t.cfg.Encryption, t.ih)
}

// startConn runs the connection's goroutines and hands it to the loop.
func (t *Torrent) startConn(c *conn) {
	if !t.post(connectedEvent{c: c}) {
		c.close(context.Canceled)
		return
	}
	// The loop closes the connections it knows when the torrent ends,
	// but one whose arrival is still queued then was never seen by it:
	// the torrent's end closes every connection, or Run would wait on
	// its reader for as long as the peer keeps silent. The writer ends
	// only once the connection is closed, and then lets go of it.
	stop := context.AfterFunc(t.ctx, func() { c.close(context.Canceled) })
	t.wg.Add(2)
	go func() {
		defer t.wg.Done()
		c.writeLoop()
		stop()
	}()
	go func() {
		defer t.wg.Done()
		c.readLoop(func(c *conn, ms []inMsg) bool {
			if t.post(messageEvent{c: c, ms: ms}) {
				return true
			}
			for _, im := range ms {
				im.chunk.release()
			}
			return false
		})
		t.post(closedEvent{c: c})
	}()
}

func (t *Torrent) connectedTo(a netip.AddrPort) bool {
	for c := range t.peers {
		if c.addr == a {
			return true
		}
	}
	return false
}

// fillDials starts dials to known addresses, the most promising first
// (see dialable), bounded by MaxDials in flight, MaxConns connected and
// maxConnsPerIP both to one address; failed addresses back off
// exponentially.
//
// A seed dials too, as libtorrent's do: a leecher that looked the torrent
// up before we announced may not look again for a long while, and meets
// us only if we connect to it. A peer that turns out to be a seed as well
// is closed (see bothSeeds) and not dialled again for seedRedialAfter.
func (t *Torrent) fillDials(now time.Time) {
	n := min(t.cfg.MaxDials-t.dialing, t.cfg.MaxConns-len(t.peers)-t.dialing)
	for _, a := range t.dialable(now, n) {
		t.known[a].next = now.Add(time.Minute) // until the dial reports back, and after a clean close
		t.dialing++
		t.dialStarted(a)
		t.wg.Add(1)
		go func() {
			defer t.wg.Done()
			err := t.dial(a)
			t.post(dialDoneEvent{addr: a, err: err})
		}()
	}
}

// dialWith dials a once, offering provide with MSE (0: plaintext); see
// dial (mse.go).
func (t *Torrent) dialWith(a netip.AddrPort, provide mse.CryptoMethod) error {
	ctx, cancel := context.WithTimeout(t.ctx, t.connectTimeout())
	defer cancel()
	nc, err := t.connect(ctx, a)
	if err != nil {
		return err
	}
	cc, crypto, err := initiateCrypto(ctx, nc, t.ih, provide)
	if err != nil {
		nc.Close()
		return err
	}
	hs, err := handshake(ctx, cc, t.ourHandshake(), true, t.checkHandshake)
	if err != nil {
		nc.Close()
		return err
	}
	// The pre-metadata limit, as in acceptLoop; connected() tightens it.
	c := newConn(cc, hs, true, wire.MaxMessageLen(0))
	c.crypto = crypto
	c.addr = a // the address it listens on, not the one it dialed from
	t.startConn(c)
	return nil
}

func (t *Torrent) connected(c *conn, now time.Time) {
	if len(t.peers) >= t.cfg.MaxConns || t.banned[c.addr.Addr()] || t.connectedTo(c.addr) {
		t.refuse(c, errors.New("not wanted"), now)
		return
	}
	if err := t.admitConn(c, now); err != nil {
		t.refuse(c, err, now)
		return
	}
	for other := range t.peers {
		if other.hs.PeerID == c.hs.PeerID {
			// Both sides dialed each other (its announce reached us as ours
			// reached it): one connection is enough.
			t.refuse(c, errors.New("already connected to this peer"), now)
			return
		}
	}
	if c.outgoing {
		t.dialWorked(c.addr)
	}
	t.countTransport(c)
	ps := &peerState{
		c: c, amChoking: true, peerChoking: true, waitingSince: now, usefulAt: now,
		requests:  make(map[blockKey]time.Time),
		cancelled: make(map[blockKey]time.Time),
		fast:      c.hs.Reserved.Fast() && !t.cfg.noFast,
		pipe:      newPipeline(now),
	}
	t.peers[c] = ps
	c.maxLen.Store(int64(t.maxMsgLen()))
	if t.info != nil {
		ps.have = wire.NewBits(t.info.NumPieces())
	}
	// BEP 3: the bitfield may only come first, so it goes before the
	// extended handshake; so do have all and have none (BEP 6).
	t.sendHaves(ps)
	if c.hs.Reserved.Extensions() {
		c.send(t.extendedHandshake(c))
	}
	if c.hs.Reserved.DHT() && t.cfg.DHT != nil {
		c.send(&wire.Message{Type: wire.Port, Port: dhtPort(t.cfg.DHT, c.addr)})
	}
	t.log.Debug("peer connected", zap.Stringer("peer", c.addr), zap.Bool("outgoing", c.outgoing), zap.String("transport", c.transport), zap.String("encryption", cryptoName(c.crypto)))
}

func (t *Torrent) extendedHandshake(c *conn) *wire.Message {
	h := wire.ExtendedHandshake{
		M:    map[string]int{wire.ExtMetadataName: extMetadataID},
		V:    ClientVersion,
		Reqq: ourReqq,
	}
	if !t.pexOff() {
		h.M[wire.ExtPexName] = extPexID
	}
	if t.info != nil {
		h.MetadataSize = len(t.info.Raw)
	}
	// The mapped port is for peers on the Internet: one on our LAN or
	// machine reaches us where we listen, and may not get through the
	// gateway back to us (no NAT loopback).
	h.P = t.listenPort()
	if t.classify(c.addr.Addr()) == classPublic {
		h.P = t.announcePort()
	}
	if a := c.addr.Addr(); a.Is4() || a.Is6() {
		h.YourIP = string(a.AsSlice())
	}
	// BEP 7: where else the peer can reach us, in the family this
	// connection does not use (in its own it sees our address, which
	// dialFrom makes our listening one). Not an address more local than
	// the peer's: it could not use it, and it would learn our LAN.
	if ip := ourIP(t.ours, !c.addr.Addr().Is4()); ip.IsValid() && classOf(ip) <= classOf(c.addr.Addr()) {
		if ip.Is4() {
			h.IPv4 = string(ip.AsSlice())
		} else {
			h.IPv6 = string(ip.AsSlice())
		}
	}
	payload, err := h.Append(nil)
	if err != nil {
		return &wire.Message{KeepAlive: true}
	}
	return &wire.Message{Type: wire.Extended, ExtendedID: 0, Payload: payload}
}

func (t *Torrent) disconnected(c *conn) {
	ps := t.peers[c]
	if ps == nil {
		return
	}
	delete(t.peers, c)
	if d := c.down.Load(); d > 0 {
		if t.downBy == nil {
			t.downBy = make(map[string]int64)
		}
		t.downBy[c.link()] += d
		t.stats.dataConns++
	}
	if t.fetch != nil {
		t.fetch.PeerGone(c.addr.String())
	}
	if t.pk != nil {
		t.releaseRequests(ps, time.Now())
		if ps.have != nil {
			t.pk.removeAvailability(ps.have)
		}
	}
	now := time.Now()
	if cd := t.known[c.addr]; cd != nil && c.outgoing {
		if next := now.Add(30 * time.Second); next.After(cd.next) { // turnover may have set a longer pause
			cd.next = next
		}
	}
	if errors.Is(c.err, errBothSeeds) {
		t.seedClosed(c, ps, now)
	}
	t.log.Debug("peer gone", zap.Stringer("peer", c.addr), zap.Error(c.err))
	if errors.Is(c.err, errTurnedOver) {
		// The slot is for a candidate: dial it before anyone else
		// connects to us and takes it.
		t.fillDials(now)
	}
}

// drop closes a connection and forgets the peer at once: the messages its
// reader has already handed over are not applied, and its requests go to
// others now rather than when the reader reports the close.
func (t *Torrent) drop(c *conn, err error) {
	c.close(err)
	t.disconnected(c)
}

// ban drops every connection from ip and refuses it from now on. A ban is
// by IP, so it also shuts out the other peers behind the same NAT: the
// accepted practice (libtorrent bans by IP too), since a peer ID or a port
// costs a liar nothing to change.
func (t *Torrent) ban(ip netip.Addr, why string) {
	if t.banned[ip] {
		return
	}
	t.banned[ip] = true
	t.log.Warn("banning peer", zap.Stringer("ip", ip), zap.String("reason", why))
	for c := range t.peers {
		if c.addr.Addr() == ip {
			t.drop(c, fmt.Errorf("banned: %s", why))
		}
	}
	t.purgeBlocks(ip)
}

// onMessage applies one message from a peer. An error disconnects it.
func (t *Torrent) onMessage(ps *peerState, m wire.Message, now time.Time) error {
	switch m.Type {
	case wire.Choke:
		ps.peerChoking = true
		if !ps.fast {
			// BEP 3: a choke drops our requests. A fast peer answers
			// each of them (BEP 6), and the rest expire.
			t.releaseRequests(ps, now)
		} else if t.pk != nil {
			// It will serve no more of a piece it does not allow us
			// fast: a piece only it may fetch would wait for its unchoke.
			for _, pc := range t.pk.inProgress {
				if pc.owner == ps && !slices.Contains(ps.allowedIn, pc.index) {
					t.releaseOwner(pc, now)
				}
			}
		}
	case wire.Unchoke:
		ps.peerChoking = false
		t.fillRequests(ps, now)
	case wire.Interested:
		if !ps.peerInterest {
			ps.peerInterest = true
			ps.waitingSince = now
			t.unchokeIfFree(ps, now)
		}
	case wire.NotInterested:
		ps.peerInterest = false
	case wire.Have:
		return t.onHave(ps, m.Index, now)
	case wire.Bitfield:
		return t.onBitfield(ps, m.Bitfield, now)
	case wire.Request:
		return t.onRequest(ps, m)
	case wire.Piece:
		return t.onPiece(ps, m, now)
	case wire.Cancel:
		// We answer requests as they come, so there is nothing queued to cancel.
	case wire.Port:
		// One per connection: BEP 5 sends it once, after the handshake,
		// and each costs the DHT a ping.
		if t.cfg.DHT != nil && !ps.sawPort && m.Port != 0 {
			t.cfg.DHT.OfferNode(netip.AddrPortFrom(ps.c.addr.Addr(), m.Port))
		}
		ps.sawPort = true
	case wire.Extended:
		return t.onExtended(ps, m, now)
	case wire.SuggestPiece, wire.HaveAll, wire.HaveNone, wire.RejectRequest, wire.AllowedFast:
		return t.onFast(ps, m, now)
	}
	return nil
}

func (t *Torrent) onHave(ps *peerState, i uint32, now time.Time) error {
	if t.info == nil {
		if len(ps.earlyHaves) < 1<<16 {
			ps.earlyHaves = append(ps.earlyHaves, i)
		}
		return nil
	}
	if int(i) >= t.info.NumPieces() {
		return fmt.Errorf("have %d: the torrent has %d pieces", i, t.info.NumPieces())
	}
	if !ps.have.Has(int(i)) {
		ps.have.Set(int(i))
		ps.numHave++
		t.pk.avail[i]++
		if t.bothSeeds(ps) {
			return errBothSeeds
		}
		t.updateInterest(ps)
		t.fillRequests(ps, now)
	}
	return nil
}

// bothSeeds reports whether ps has every piece while we want none: a
// connection of no use to either side.
func (t *Torrent) bothSeeds(ps *peerState) bool {
	return t.info != nil && ps.have != nil && ps.numHave == t.info.NumPieces() && t.wantNothing()
}

func (t *Torrent) onBitfield(ps *peerState, b []byte, now time.Time) error {
	// BEP 3 sends it once, first: a peer that repeats it is either broken
	// or making us copy up to 64 KiB per message.
	if ps.sawBitfield {
		return errors.New("a second bitfield")
	}
	ps.sawBitfield = true
	if t.info == nil {
		ps.rawBits = append([]byte(nil), b...)
		return nil
	}
	return t.applyBitfield(ps, b, now)
}

func (t *Torrent) applyBitfield(ps *peerState, b []byte, now time.Time) error {
	if !wire.ValidBitfield(b, t.info.NumPieces()) {
		return fmt.Errorf("bitfield of %d bytes for %d pieces", len(b), t.info.NumPieces())
	}
	return t.setHave(ps, append(wire.Bits(nil), b...), now)
}

// setHave replaces what ps has with have (a bitfield, or all of a have
// all): errBothSeeds when it and we are both seeds.
func (t *Torrent) setHave(ps *peerState, have wire.Bits, now time.Time) error {
	if ps.have != nil {
		t.pk.removeAvailability(ps.have)
	}
	ps.have = have
	ps.numHave = t.pk.addAvailability(ps.have)
	if t.bothSeeds(ps) {
		return errBothSeeds
	}
	t.updateInterest(ps)
	t.fillRequests(ps, now)
	return nil
}

// adoptEarly applies what a peer told us before we knew the piece count.
func (t *Torrent) adoptEarly(ps *peerState, now time.Time) error {
	ps.have = wire.NewBits(t.info.NumPieces())
	if ps.rawBits != nil {
		b := ps.rawBits
		ps.rawBits = nil
		if err := t.applyBitfield(ps, b, now); err != nil {
			return err
		}
	}
	for _, i := range ps.earlyHaves {
		if err := t.onHave(ps, i, now); err != nil {
			return err
		}
	}
	ps.earlyHaves = nil
	return t.adoptEarlyFast(ps, now)
}

func (t *Torrent) updateInterest(ps *peerState) {
	want := t.pk != nil && t.pk.wantsFrom(ps.have) && !t.cfg.NoDownload
	if want != ps.amInterest {
		ps.amInterest = want
		typ := wire.NotInterested
		if want {
			typ = wire.Interested
		}
		ps.c.send(&wire.Message{Type: typ})
	}
}

// onRequest serves a block if we have its piece and the peer is unchoked
// (or, choked, allowed it fast), and rejects it otherwise if the peer is
// fast; a request outside the torrent is a protocol violation.
func (t *Torrent) onRequest(ps *peerState, m wire.Message) error {
	if t.info == nil {
		return errors.New("request before we could have sent a bitfield")
	}
	p := int(m.Index)
	if p >= t.info.NumPieces() || int64(m.Begin)+int64(m.Length) > t.info.PieceSize(p) {
		return fmt.Errorf("request beyond the torrent: piece %d, %d+%d", p, m.Begin, m.Length)
	}
	if !t.st.Complete(p) || (ps.amChoking && !t.servesChoked(ps, p)) {
		t.reject(ps, m)
		return nil
	}
	ps.c.sendBlock(&blockRead{st: t.st, index: m.Index, begin: m.Begin, fail: t.fail}, int(m.Length))
	ps.c.up.Add(int64(m.Length))
	t.stats.uploaded += int64(m.Length)
	return nil
}

func (t *Torrent) onExtended(ps *peerState, m wire.Message, now time.Time) error {
	switch m.ExtendedID {
	case 0:
		h, err := wire.ParseExtendedHandshake(m.Payload)
		if err != nil {
			return fmt.Errorf("extended handshake: %w", err)
		}
		if ip, ok := h.YourAddr(); ok && t.cfg.DHT != nil {
			// BEP 10's "yourip" is one more vote on our external address,
			// which BEP 42 bases our node ID on.
			t.cfg.DHT.ReportExternalIP(ps.c.addr.Addr(), ip)
		}
		t.stats.droppedAddrFields += h.Dropped
		t.addrHints(ps, h, now)
		claimed, oldSize := ps.extMeta != 0, ps.metaSize
		ps.extMeta = h.M[wire.ExtMetadataName]
		ps.reqq = h.Reqq
		ps.metaSize = h.MetadataSize
		ps.extPex = h.M[wire.ExtPexName]
		switch {
		case t.fetch == nil:
		case ps.extMeta == 0:
			// A later handshake may take ut_metadata back: the fetch must
			// not wait on requests it will never see answered.
			if claimed {
				t.fetch.Withdraw(ps.c.addr.String())
			}
		default:
			// A size others disagree with is no reason to drop the peer:
			// the fetch asks each peer for the size it claimed.
			if err := t.fetch.SetSize(ps.c.addr.String(), h.MetadataSize); err != nil {
				return fmt.Errorf("metadata_size: %w", err)
			}
			// Only a new claim is asked at once; a repeated handshake
			// waits for the tick like everyone else, so that sending
			// handshakes buys a peer nothing.
			if !claimed || oldSize != ps.metaSize {
				t.requestMetadata(ps, now)
			}
		}
	case extMetadataID:
		return t.onMetadataMsg(ps, m.Payload, now)
	case extPexID:
		return t.onPex(ps, m.Payload, now)
	default:
		return fmt.Errorf("extended message with unknown id %d", m.ExtendedID)
	}
	return nil
}

func (t *Torrent) onMetadataMsg(ps *peerState, payload []byte, now time.Time) error {
	mm, data, err := metadata.ParseMetadataMsg(payload)
	if err != nil {
		return fmt.Errorf("ut_metadata: %w", err)
	}
	switch mm.Type {
	case 0: // request
		if ps.extMeta == 0 {
			return errors.New("ut_metadata request from a peer that did not offer ut_metadata")
		}
		t.serveMetadata(ps)
		n := 0
		if t.info != nil {
			n = (len(t.info.Raw) + metadata.MetadataPieceSize - 1) / metadata.MetadataPieceSize
		}
		switch {
		case mm.Piece >= n:
			// A reject is small, and a peer that does not read them
			// fills its queue and is dropped.
			ps.c.send(&wire.Message{Type: wire.Extended, ExtendedID: uint8(ps.extMeta), Payload: metadata.ServeMetadata(nil, mm.Piece)})
		case ps.c.metaOut.Load() < maxMetadataAnswers:
			ps.c.sendMetadata(&wire.Message{Type: wire.Extended, ExtendedID: uint8(ps.extMeta), Payload: metadata.ServeMetadata(t.info.Raw, mm.Piece)})
		default:
			if ps.metaWanted == nil {
				ps.metaWanted = make([]bool, n)
			}
			if !ps.metaWanted[mm.Piece] {
				ps.metaWanted[mm.Piece] = true
				ps.metaWantedN++
			}
		}
	case 1: // data
		if t.fetch == nil {
			return nil // a late answer after we completed
		}
		t.metadataArriving(ps, mm.Piece, now)
		err := t.fetch.Received(ps.c.addr.String(), mm.Piece, data)
		var he *metadata.MetadataHashError
		if errors.As(err, &he) {
			if he.Culprit != "" {
				t.banPeer(he.Culprit, "metadata that does not hash to the info-hash")
			} else {
				t.log.Info("metadata failed its hash; fetching it from one peer at a time",
					zap.Int("size", he.Size), zap.Strings("contributors", he.Peers))
			}
			return nil
		}
		if t.fetch.Done() {
			for _, p := range t.fetch.Liars() {
				t.banPeer(p, "metadata pieces that differ from the verified metadata")
			}
			// The metadata hashed right; whether it is usable is the
			// torrent's problem, not this peer's.
			info, err := t.fetch.Info()
			t.fetch = nil
			if err == nil {
				t.dropWrongSize(len(info.Raw))
			}
			if err != nil {
				t.fail(fmt.Errorf("%w: %w", ErrBadMetadata, err))
				return nil
			}
			if err := t.setInfo(info); err != nil && t.ctx.Err() == nil {
				t.fail(err)
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("ut_metadata data: %w", err)
		}
		t.requestMetadata(ps, now)
	case 2: // reject
		if t.fetch != nil && t.fetch.Rejected(ps.c.addr.String(), mm.Piece, now) {
			// Another claimant may have it: ask now, not at the tick.
			for _, other := range t.peers {
				if other != ps {
					t.requestMetadata(other, now)
				}
			}
		}
	}
	return nil
}

// serveMetadata answers the metadata requests ps has waiting, as far as
// maxMetadataAnswers allows.
func (t *Torrent) serveMetadata(ps *peerState) {
	for i := 0; ps.metaWantedN > 0 && i < len(ps.metaWanted); i++ {
		if ps.c.metaOut.Load() >= maxMetadataAnswers {
			return
		}
		if ps.metaWanted[i] {
			ps.metaWanted[i] = false
			ps.metaWantedN--
			ps.c.sendMetadata(&wire.Message{Type: wire.Extended, ExtendedID: uint8(ps.extMeta), Payload: metadata.ServeMetadata(t.info.Raw, i)})
		}
	}
}

// banPeer bans the IP of a peer named as the metadata fetch names it.
func (t *Torrent) banPeer(peer, why string) {
	if ap, err := netip.ParseAddrPort(peer); err == nil {
		t.ban(ap.Addr(), why)
	}
}

// dropWrongSize drops the peers that claimed a metadata_size other than
// the verified one: they lied, or serve another torrent under this
// info-hash, and are of no use.
func (t *Torrent) dropWrongSize(size int) {
	for c, ps := range t.peers {
		if ps.metaSize != 0 && ps.metaSize != size {
			t.drop(c, fmt.Errorf("claimed metadata_size %d, the metadata has %d", ps.metaSize, size))
		}
	}
}

func (t *Torrent) requestMetadata(ps *peerState, now time.Time) {
	if t.fetch == nil || ps.extMeta == 0 || ps.metaSize == 0 {
		return
	}
	for {
		p, ok := t.fetch.Next(ps.c.addr.String(), now)
		if !ok {
			return
		}
		payload, err := metadata.MetadataMsg{Type: 0, Piece: p}.Append(nil, nil)
		if err != nil {
			return
		}
		ps.c.send(&wire.Message{Type: wire.Extended, ExtendedID: uint8(ps.extMeta), Payload: payload})
		t.metadataAsked(ps, now)
	}
}

// dhtPort is the DHT port a BEP 5 port message tells the peer at addr:
// the socket of its family's, as the peer will reach our node from the
// address it sees us at.
func dhtPort(d DHT, addr netip.AddrPort) uint16 {
	if a6 := d.Addr6(); a6.IsValid() && !addr.Addr().Unmap().Is4() {
		return a6.Port()
	}
	return d.Addr().Port()
}
