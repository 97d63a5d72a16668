// Package peer is the BitTorrent swarm engine (BEP 3, with BEP 10's
// extension protocol, BEP 9's ut_metadata, BEP 5's port message, BEP 6's
// Fast extension, BEP 7's addresses and BEP 11's peer exchange): one
// Torrent downloads a torrent from the peers the DHT, the trackers (see
// sub-package tracker) and other peers name, and serves it to the peers
// that ask.
//
// Terms: a "peer" is a BitTorrent client on TCP or uTP (a "node" is a DHT
// participant on UDP); a "piece" is a hashed unit of the torrent, a
// "block" the 16 KiB unit requested on the wire.
//
// Transports: a connection runs over TCP or uTP (Config.UTPDial, and a
// uTP listener among Listeners); the wire, choking, limits and stats
// treat both alike, and each conn records its transport
// (PeerStat.Transport; Stats.DownloadedBy keeps the bytes each
// transport and encryption delivered, departed peers included). A dial
// tries uTP first, and TCP beside it once
// uTP has had utpHeadStart; the first to connect is kept, the other
// closed unused, and an address where TCP won is dialled over TCP for
// noUTPFor (at most maxNoUTP remembered).
// Incoming uTP connections wait for their handshake in a budget of their
// own (maxPendingHandshakes), since a uTP SYN can come from any address.
//
// Encryption (mse.go): Config.Encryption chooses how Message Stream
// Encryption (MSE/PE) is used, through github.com/anacrolix/torrent/mse.
// Incoming connections are sniffed: a plaintext BitTorrent handshake goes
// on as it is, and anything else is answered as an MSE receiver with the
// torrent's info-hash as the secret key, all under one handshake
// deadline. In prefer mode (the default) dials offer RC4 and plaintext; a
// failed MSE handshake (but not a timed-out one) is followed at once by a
// plaintext dial, whose success is remembered for the address
// (maxPlainOnly). Require offers and accepts only RC4; off speaks only
// plaintext. As receiver we select RC4 whenever it is offered.
// conn.crypto records the result, and Stats.EncryptedPeers counts RC4
// peers.
//
// Concurrency: each connection has a reader goroutine, which frames and
// decodes messages (length checked before allocating, a deadline on every
// read) and hands the loop whatever complete messages are already
// buffered as one batch, and a writer goroutine, which drains a bounded
// queue and reads the blocks we serve from storage itself. One goroutine,
// the Torrent's loop, owns everything else: peer states, the piece
// picker, requests, the choker, the BEP 9 fetch. It tops up a peer's
// request pipeline once per batch, so the requests leave in one write,
// and cancels and re-asks requests a peer sits on for 10 times its usual
// answer time (3 s to 30 s).
//
// Pipelines (pipeline.go): each peer's is sized from what it delivers:
// rate × (round trip + min(round trip, requestQueueTime)) / 16 KiB, twice
// the bandwidth-delay product (libtorrent adds a fixed 3 s, which at
// loopback or LAN speeds asks for the ceiling and holds its memory for
// nothing), at least safePipeline for a peer sending 1 MiB/s or more,
// starting at initialPipeline and within the peer's reqq, maxPipeline,
// half the buffer budget and a stall ceiling. It goes past safePipeline
// only when both sides speak the Fast extension, since only then must a
// peer answer a cancel (anacrolix, without it, never frees a cancelled
// request's share of its budget). A peer that
// sits on its pipeline for its stall time has every request cancelled
// and asked of others, and its ceiling drops. Slow start (one block more
// per block received, from initialPipeline) goes past safePipeline only
// while blocks come back within slowStartDelay round trips; the first
// block that waited longer ends it and halves the depth (not below
// safePipeline), so a near peer does not double to maxPipeline before its
// first rate sample, which held 2000 blocks and some 60 pieces in memory
// with four loopback seeders. A peer that serves in batches (Transmission,
// every 500 ms) answers a request asked just before a batch at once, so
// its least wait kept the pipeline at four blocks a batch (128 KiB/s):
// slow start resumes when a rate window brings slowStartResume times the
// one before and the peer sat on our requests for batchGap in it. lag, the
// least wait of that window, is then the peer's own service time, against
// which the delay exit and the depth are measured (rate × (round trip +
// min(max(round trip, lag), requestQueueTime))), and the resumed slow
// start ends once a window's rate grows by less than slowStartGrowth
// (libtorrent's exit). A near peer serving as asked never pauses so, even
// when its rate jumps, and keeps the depth the delay exit left.
//
// Memory: a connection reads into pooled 128 KiB chunks and hands a
// block to the loop as a slice of its chunk, which the loop copies into
// the piece (one copy in user space per byte); a reader keeps at most
// maxReadChunks chunks alive and waits for the loop beyond that. Piece
// buffers are recycled, so a download's steady state allocates next to
// nothing. A
// complete piece is hashed whole by a worker, off the loop (SHA-1 is half
// a download's CPU), and written only if it hashes right (with direct I/O
// unless Config.OSCache, see storage); no new piece is started while
// maxWriting pieces wait for that. The writer reads the blocks we serve
// from storage straight into its batch buffer (writeBufSize: sixteen
// piece messages), behind their headers, and writes the batch in one
// call; the buffer comes from a pool and goes back once the queue is
// empty, so an idle connection holds at most keptBatch. On an RC4 stream
// at most maxCipherWrite is handed to the cipher at once.
//
// Data safety: blocks are held in memory until their piece hashes right,
// then written; nothing unverified reaches the disk. A peer that was the
// only source of a piece that failed its hash is banned; when several
// contributed, the piece is fetched again from a single peer so that a
// second failure has one culprit (if that peer stops serving it, by a
// choke, a stall, a reject or leaving, its requests for the piece are
// cancelled and the blocks it sent dropped, so the next peer fetches the
// whole piece, and a block for it from any other peer is wasted, not
// taken), and the digest of each block is kept
// (smart ban, as libtorrent does): once the piece verifies, whoever sent
// a block that differs is banned. A banned peer's blocks in pieces still
// being assembled are dropped and asked of others, and a peer dropped or
// banned is forgotten at once: what its reader had already handed over is
// not applied.
//
// Metadata (BEP 9): each claimed metadata_size is fetched only from the
// peers that claimed it (at most metadata.MaxCandidateSizes sizes at once,
// those with the most claimants by IPv4 address or IPv6 /64, a size that
// stalls benched for the next), so a liar about the size delays
// nobody, and peers are dropped for disagreeing only once the metadata is
// known. A metadata piece is taken only from the peer it was asked of. An
// assembly that fails the hash with several contributors is fetched again
// one peer at a time, and the liar is banned when its turn fails or when
// the good metadata shows its earlier pieces were wrong. When serving, at
// most maxMetadataAnswers answers are queued to a peer; further requests
// wait as one bit per piece. We advertise reqq ourReqq. Every send queue
// is bounded in bytes (maxQueueBytes, twice ourReqq blocks, served blocks
// counted at their length but read from disk only when written), and a
// peer that lets it fill is not reading and is dropped. A later BEP 10 handshake
// that drops ut_metadata takes the peer's claim back at once
// (metadata.Fetch.Withdraw), and one that changes nothing asks the peer
// for nothing: requests go out on a new or changed claim, on data, on a
// refusal that frees a request (to the other claimants) and at the tick,
// so no peer is asked sooner, or keeps the one-peer turn, by re-sending
// its handshake.
//
// Hostile peers: one IPv4 address or IPv6 /64 holds at most maxConnsPerIP
// connections, and at most maxPendingHandshakes incoming handshakes are in
// progress at once (maxConnsPerIP per address). Slots being dialled are
// not given to incoming peers. While downloading with every slot taken
// and candidates waiting, turnover closes up to turnoverPeers peers every
// turnoverEvery that gave us nothing, and they may not come back for
// turnoverCooldown. Candidates to dial (at most maxKnownAddrs) carry the
// DHT node that named them: one node may name at most maxAddrsPerSource,
// and no node may name an address more local than its own (loopback,
// private, link-local), nor port 0, multicast or unspecified addresses;
// the user's peers (a magnet's x.pe) are trusted. Candidates that fail
// maxDialFailures dials are dropped, a full list drops its worst eighth,
// and dials go first to untried candidates from sources whose candidates
// worked. Before the metadata, a metadata piece we asked a peer for counts
// as something given, and a peer we asked has turnoverStarved from its
// first unanswered request, so a slow metadata source keeps its slot while
// a peer that only takes requests does not. Dials in flight count against
// maxConnsPerIP as connections do, so one host listening on many ports
// takes at most that many dials, and a dial refused after its handshake
// counts as failed.
//
// Backpressure: what the readers have read but the loop has not handled
// is bounded in bytes, not events: each message takes its size from a
// torrent-wide budget (maxInboundBytes) that the loop gives back once it
// has handled the batch. A reader that finds the budget spent hands over
// what it holds and waits, so the peer behind it waits on TCP flow
// control; the loop never waits on the budget. Messages a peer may send
// only once (the bitfield, BEP 5's port) are acted on once: a second
// bitfield drops the peer, later port messages are ignored, and the one
// we act on goes to the DHT through DHT.OfferNode, which in dht.Node
// bounds the pings it costs.
//
// Peer sources: the user's addresses (x.pe), the DHT's lookups, trackers
// (Config.Trackers, package tracker), PEX and BEP 7 hints all feed one
// candidate list. dialable orders it: candidates with fewer failed dials
// in a row first; then the user's, then the DHT's and trackers' alike (fromDHT, fromTracker),
// then PEX's, then BEP 7 hints; then those of sources whose candidates
// worked; then the newest. An address named again by a more trusted kind
// of source takes that kind (a PEX peer's seed flag does not outlive the
// DHT's naming) but stays in the count of the source that named it
// first. Each tracker, like each DHT node and each peer that
// sends PEX, is a source by its address (for a tracker, the least local
// one its request went through, after redirects): it may hold at most
// maxAddrsPerSource candidates, none more local than itself; a full
// source's new candidate replaces its candidate that failed most, then
// its oldest that failed, of those not connected nor being dialled, and
// is refused if none (Stats.SourceReplaced, Stats.SourceFull). Once its
// metadata shows a torrent private (BEP 27), it forgets candidates named
// by peers and the DHT, takes none from either, and neither looks up nor
// announces in the DHT. An address where a dial reached ourselves (our
// listener saw it come in with our peer ID) is remembered (maxSelfAddrs)
// and not taken again. Each tracker answer is one event for the loop, and
// tracker requests leave from our listening address of the tracker's
// family. The announcer reports uploaded, downloaded and left, sends
// completed when a download finishes and stopped on exit (within
// tracker.StopTimeout); a hostile tracker costs only its own retries.
//
// Addresses: a Torrent may listen on several sockets (Config.Listener and
// Listeners; the first gives the port we announce and send as p). Peers
// of both families are dialled. The default dialer leaves from the
// listener's IP of the address's family when that listener is bound to a
// specific IP, so peers see the address we listen on; with a wildcard
// listener the kernel chooses. In the BEP 10 handshake we send, besides
// yourip, our address of the family the connection does not use (BEP 7
// ipv4 or ipv6) when we listen on a specific one no more local than the
// peer. A peer's ipv4/ipv6, with its p, is a hint: one per family per
// connection becomes a candidate named by that peer, dialled last and not
// while that peer is connected; malformed ones are counted in
// Stats.DroppedAddrFields. Seeds dial too, as libtorrent's do, so a
// leecher that looked us up before our announce still meets us. A peer
// found to have every piece while we want none (wantNothing: complete, or NoDownload)
// is closed, including every such peer at the moment we complete, and is
// not dialled again for seedRedialAfter.
//
// SetAnnouncePort tells a running torrent the port it is reachable on
// from outside (a gateway forwarding another external port): the DHT is
// re-announced at once, the trackers hear it at their next announce, and
// new connections' extended handshakes with peers at public addresses
// carry it as p (others get the listener's port); 0 is the first
// listener's port.
//
// Peer exchange (pex.go, BEP 11): the extended handshake offers ut_pex.
// Each peer that takes it gets, at most once every pexInterval, the peers
// we are connected to and whose listen port we know (those we dialled,
// flagged reachable; those that gave a BEP 10 p) as added/dropped
// changes, 50 of each at most, never itself, us, or an address more local
// than it. Contacts received become candidates of kind fromPex, dialled
// after the user's and the DHT's, within the same per-source and class
// rules, pexPerIP per host per message, 100 in a connection's first
// message and 50 later. Early messages are ignored and counted;
// pexMaxEarly of them, or a malformed message, drop the peer.
//
// Fast extension (fast.go, BEP 6): on when both handshakes set the bit.
// Have all/none replace the bitfield and count as it; every request gets
// exactly one answer (we serve or reject at once); a peer's choke no
// longer drops our requests, which stay until served, rejected or
// expired, and a rejected block is asked of the others at once. A choked
// interested peer gets its allowed fast set (allowedFastSetSize) and may
// fetch each of those pieces once; the pieces a peer allows us
// (maxAllowedFastIn) are asked for while it chokes us, and its newest
// maxSuggested suggestions come first when picking a piece for it. Fast
// messages from a peer without the bit drop it.
//
// Many torrents, one port (mux.go): a Mux owns the TCP and uTP listeners
// of a process and gives each torrent a virtual listener (Mux.Listener)
// for Config.Listener, whose Addr is the first real listener's, so every
// torrent announces that port and sends it as p. The Mux sniffs each
// incoming connection, answers MSE with every registered info-hash as a
// candidate secret key (under MuxConfig.Encryption), reads the peer's
// handshake to learn the info-hash, and queues the connection for that
// torrent with what MSE selected and the handshake bytes, which the
// torrent's handshake reads back; the torrent does not sniff again but
// checks its own Encryption (require refuses plaintext and header-only
// MSE, off refuses MSE) and checkIncoming. An info-hash nobody
// registered, or an MSE key for one torrent with a handshake for another,
// is closed. Handshakes in flight are bounded per address
// (maxConnsPerIP), per IPv4 /24 or IPv6 /48 (maxHandshakesPerNet) and
// overall (maxMuxHandshakes, uTP apart), each by handshakeTimeout and by
// firstBytesTimeout until the peer sends something. A full budget does
// not refuse the newcomer: it evicts the handshake in the full scope that
// is silent (nothing read and nothing waiting in the socket) or, past
// muxEvictAfter, idle or slower than muxMinHandshakeRate, the longest
// idle first (muxbudget.go), so a slowloris from many addresses churns
// among its own connections while honest initiators, which send at once,
// get through. A torrent that does not accept holds at most
// muxAcceptQueue connections, and the rest are closed without holding up
// the others. Closing a virtual listener (a stopped torrent) unregisters
// it.
//
// Shared rate limits (ratelimit.go): a RateLimit given as
// Config.UploadLimit or DownloadLimit is one more token bucket, which
// every torrent given it draws from after its own
// MaxUploadRate/MaxDownloadRate bucket, so together they stay within it;
// SetRate changes it while they run (0 lifts it).
//
// A torrent that wants nothing and has no peer, connected or dialled,
// ticks every idleTickEvery (2 s) instead of every 250 ms; the first
// event that ends this brings the fast tick back. A process seeding
// hundreds of torrents nobody asks for stays under 1% of a core.
//
// Sub-package wire is the pure message codec; sub-package tracker asks
// trackers for peers.
package peer
