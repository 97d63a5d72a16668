// Package tracker asks BitTorrent trackers for peers: a peer source
// beside the DHT, of the same shape (peers, each batch with the address
// of the tracker that named them: one Found per answer), so the swarm
// takes both alike. It knows nothing of the swarm.
//
// It implements:
//
//   - BEP 3: HTTP(S) announces (info_hash, peer_id, port, uploaded,
//     downloaded, left, the events started, completed and stopped) and
//     their bencoded answers, peers in the original list form too.
//   - BEP 23: compact peer lists; BEP 7: "peers6".
//   - BEP 15: UDP trackers: connect, announce, scrape and the error
//     action; connection IDs reused for a minute, and a request refused
//     under a reused ID ("connection ID expired") made once more with a
//     new one; transaction IDs checked (a packet of another transaction
//     is counted and ignored); the 15·2^n retry schedule, stopped after
//     UDPMaxAttempts. A tracker whose name has addresses in both
//     families is tried over the other when one cannot be reached.
//   - BEP 12: tiers. Within a tier the trackers are shuffled and tried in
//     turn, and the one that answers moves to the front. Unlike the BEP,
//     which asks the next tier only once a whole tier failed, every tier
//     runs at once, so that a dead tracker never holds back the others'
//     peers; and within a tier a UDP tracker that lets an attempt time
//     out yields to the next one, its next attempt (twice as long) left
//     for the next round.
//   - BEP 3's "tracker id", sent back; a stopped announce asks for no
//     peers.
//   - BEP 48: HTTP scrape by its URL convention, and UDP scrape.
//
// Terms: a "tracker" is a server at an announce URL; an "announce" is one
// request to it and its answer; a "tier" is a list of trackers that serve
// the same swarm, tried one at a time.
//
// Every tracker is untrusted (anyone who makes a link names them), and
// one may cost only its own retries: at most MaxTrackers are kept from a
// link, at most MaxAnnouncesInFlight requests of a Client are under way
// at once; answers are bounded in size (MaxBodySize, MaxUDPPacket) and
// in peers (MaxPeersPerAnswer), HTTP redirects in number and without
// loops, every request in time (HTTPTimeout, the UDP schedule), the
// interval a tracker asks for in both directions (MinAnnounceInterval,
// MaxAnnounceInterval), and the stopped announces on exit
// (StopTimeout). Bad answers end in an error that wraps ErrBadAnswer,
// ErrTimeout or is an *Error (the tracker's own refusal), and are
// counted (Stats). The decoders (ParseAnnounce, ParseScrape and the
// BEP 15 readers) do no I/O and are fuzzed.
//
// Nor may a tracker use us to reach what it cannot (server-side request
// forgery), as libtorrent's ssrf_mitigation rules: addresses are
// loopback (with 0.0.0.0 and ::), private (RFC 1918, ULA, link-local,
// CGNAT...) or public, and each address is judged as it is dialled,
// after name resolution, so a name that resolves elsewhere the next time
// (DNS rebinding) gains nothing.
//
//   - A tracker on a loopback or private address is asked only if its
//     URL's path is /announce (its scrape is then asked too): a link
//     cannot make us request another service of this host or our LAN.
//   - An HTTP redirect may not lead to an address more local than the
//     first one the request reached (public to private or loopback,
//     private to loopback): it is refused with ErrLocal, and counted.
//     HTTP connections are not kept between requests, so each hop is
//     dialled and judged.
//   - The answer's source (Response.From, which decides the peers the
//     swarm takes from it) is the least local address the request went
//     through, so a redirect never makes an answer more trusted.
//
// Requests leave from the address we accept peers on, of the tracker's
// family (NewClient's locals): trackers take the address an announce
// comes from as the peer's.
package tracker
