// Package tracker asks BitTorrent trackers for peers: a peer source
// beside the DHT, with the same shape (a stream of Found peers, each with
// the address of the tracker that named it), so the swarm takes both
// alike. It knows nothing of the swarm.
//
// It implements:
//
//   - BEP 3: HTTP(S) announces (info_hash, peer_id, port, uploaded,
//     downloaded, left, the events started, completed and stopped) and
//     their bencoded answers, peers in the original list form too.
//   - BEP 23: compact peer lists; BEP 7: "peers6".
//   - BEP 15: UDP trackers: connect, announce, scrape and the error
//     action; connection IDs reused for a minute; transaction IDs checked
//     (a packet of another transaction is counted and ignored); the
//     15·2^n retry schedule, stopped after UDPMaxAttempts.
//   - BEP 12: tiers. Within a tier the trackers are shuffled and tried in
//     turn, and the one that answers moves to the front. Unlike the BEP,
//     which asks the next tier only once a whole tier failed, every tier
//     runs at once, so that a dead tracker never holds back the others'
//     peers.
//   - BEP 48: HTTP scrape by its URL convention, and UDP scrape.
//
// Terms: a "tracker" is a server at an announce URL; an "announce" is one
// request to it and its answer; a "tier" is a list of trackers that serve
// the same swarm, tried one at a time.
//
// Every tracker is untrusted (anyone who makes a link names them), and
// one may cost only its own retries: answers are bounded in size
// (MaxBodySize, MaxUDPPacket) and in peers (MaxPeersPerAnswer), HTTP
// redirects in number and without loops, every request in time
// (HTTPTimeout, the UDP schedule), the interval a tracker asks for in
// both directions (MinAnnounceInterval, MaxAnnounceInterval), and the
// stopped announces on exit (StopTimeout). Bad answers end in an error
// that wraps ErrBadAnswer, ErrTimeout or is an *Error (the tracker's own
// refusal), and are counted (Stats). The decoders (ParseAnnounce,
// ParseScrape and the BEP 15 readers) do no I/O and are fuzzed.
package tracker
