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
//     UDPMaxAttempts. A tracker whose name has several addresses
//     (MaxAddrsPerTracker at most, the families taking turns) is tried
//     at the next when one cannot be reached, and each attempt after a
//     timeout begins with the next.
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
//     An IPv6 address that carries an IPv4 one (NAT64, 6to4,
//     IPv4-compatible or -translated) is as local as that address.
//   - No path is sent over UDP, so a UDP tracker on a loopback or
//     private address is also refused at a system port (below 1024:
//     DNS, NTP, SNMP...) and at SSDP's, NAT-PMP's and mDNS's; at other
//     ports such a link can make us send BEP 15 connect packets (16
//     bytes of fixed form) and nothing more, the announce following only
//     a valid connect answer. Local UDP trackers are allowed, as
//     libtorrent allows them.
//   - An HTTP redirect may not lead to an address more local than the
//     first one the request reached (public to private or loopback,
//     private to loopback), nor to a loopback or private address at a
//     path other than /announce (or /scrape): it is refused with
//     ErrLocal, and counted. HTTP connections are not kept between
//     requests, so each hop is dialled and judged.
//   - The answer's source (Response.From, which decides the peers the
//     swarm takes from it) is the least local address the request went
//     through, so a redirect never makes an answer more trusted.
//
// An HTTP tracker's addresses are dialled as RFC 8305 says: the next one
// is started beside the last after dialFallbackDelay (300 ms) or when it
// fails, and the first connection wins, so a dead address (a round-robin
// name's, an IPv6 path that is down) does not spend HTTPTimeout.
//
// Requests leave from the address we accept peers on, of the tracker's
// family (NewClient's locals): trackers take the address an announce
// comes from as the peer's.
package tracker
