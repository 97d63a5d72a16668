// Package routing is the Kademlia routing table of a BitTorrent Mainline DHT
// node, as specified by BEP 5. It also implements BEP 42, which ties node
// IDs to IP addresses (SecureID, IDMatchesIP): the table can be told to
// refuse nodes whose ID does not match their address and to cap how many
// nodes of one subnet a bucket holds (Config), so that one attacker cannot
// fill the table.
//
// Terms:
//
//   - node: a DHT participant, known by its 160-bit ID.
//   - contact: a node's ID together with the UDP address it answers on.
//   - bucket: a set of at most K contacts whose IDs share a given number of
//     leading bits with our own ID. The table starts with one bucket that
//     covers the whole key space and splits the bucket containing our own ID
//     when it overflows, so that the table knows many nodes near us and
//     few far away.
//   - good: a node that answered one of our queries in the last 15 minutes,
//     or that has answered at least once and queried us in the last 15
//     minutes.
//   - questionable: a node that is neither good nor bad; it should be pinged
//     before it is trusted again or replaced.
//   - bad: a node that failed several consecutive queries; it is the first
//     to be replaced.
//   - replacement cache: per bucket, the most recent nodes that answered us
//     while the bucket was full. They take the place of members that go bad,
//     so a bucket heals without a fresh lookup.
//
// ID and Contact are aliases of the types in package nodeid (krpc/nodeid),
// the wire's definition of a node's name, and IDLen, ParseID, IDFromBytes
// and RandomID forward to it, so that values pass between the table and
// KRPC messages without conversion and callers keep one import. That leaf
// is the only package of ours routing imports: the table knows nothing of
// the KRPC codec or transport, and they nothing of it. What only the table
// needs of IDs (CommonPrefixLen, Closer, BEP 42's SecureID and
// IDMatchesIP) lives here.
//
// The table is a pure data structure: no I/O, no goroutines, no clock and no
// global randomness. Time is passed in as now and randomness as a
// *rand.Rand, which keeps it deterministic and testable. It is not safe for
// concurrent use; callers serialise access.
package routing
