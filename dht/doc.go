// Package dht is a Mainline DHT node (BEP 5, with BEP 32's dual stack,
// BEP 33's scrapes, BEP 43's read-only mode and BEP 51's
// sample_infohashes).
//
// A Node answers the four BEP 5 queries (ping, find_node, get_peers,
// announce_peer) and BEP 51's sample_infohashes, keeps a Kademlia routing
// table (package routing), stores the peers announced to it in a bounded,
// expiring store, and runs iterative lookups: FindNode, GetPeers (which
// streams peers while it runs) and Announce (a get_peers lookup, then
// announce_peer to the K closest nodes with the tokens they gave).
// GetPeersFrom and AnnounceFrom also tell which node named each peer, so
// that a caller can judge values by their source (package peer caps what
// one node may add and refuses local addresses from public nodes).
//
// Lookups keep alpha queries in flight, always to the closest candidates
// not yet asked, until the K closest that answered are known. They start
// from the nodes nearest the target in the routing table and in a bounded
// LRU cache of nodes seen in answers and of nodes that queried us (these
// only once they answered our check of them, whose source address may be
// forged, and only into room to spare, never pushing anything out)
// (Config.NodeCacheSize): the table keeps K nodes per bucket and is dense
// only near our own ID, so for most targets the cache starts a lookup
// several bits closer, often at a node that already stores the peers.
// While the cache is under a quarter full, a new querier is checked with
// a find_node for a random target rather than a ping, its answer feeding
// the cache; and Bootstrap starts a fill of the cache in the background
// (not awaited): at most 32 find_node queries (fillQueries), one for each
// region of the key space where the cache holds nobody yet. Bootstrap
// itself is the own-ID lookup, then two find_node queries (refreshHops)
// into each far bucket that holds nobody; a bucket with members fills
// from the nodes that query us. Joining costs about 65-80 queries per
// node while a 1,000-node network forms, as anacrolix/dht's bootstrap
// does. Pings start at most pingRate a second (burst pingBurst): with one
// refresh lookup per bucket per 15 minutes, that bounds what a node sends
// unasked. The checks of queriers, whose addresses can be forged, and of
// nodes peers offer leave pingReserve of those pings, and of the maxPings
// in flight, to the table's own liveness pings. Cached nodes are unverified: they
// enter the routing table only by answering a query, like any lookup
// candidate, and one that times out leaves the cache. A query unanswered
// after a soft timeout (the smoothed round-trip time plus four deviations,
// but at most two smoothed round trips, and at least 100 ms) gives its
// slot to the next candidate, and so does one to a node that answers have
// pushed out of the K closest candidates (overtaken): the lookup's path
// runs through the closer nodes now. The answer of either is still taken
// if it comes before the lookup ends. Until alpha nodes have answered
// and, for get_peers, a peer is found, twice alpha queries are in flight:
// early on, the fastest of more live nodes sets each hop's pace and
// silent ones (a third of the nodes answers name, on the live DHT) hold
// fewer of the slots.
//
// A node that answers under another ID than the one it was named with
// (by the answer that named it, or by our table or cache) is disowned
// for the lookup: one of the two lied. It ranks at the farther of the two
// IDs, the nodes it names are not followed, it enters neither the table
// nor the cache, and its peers are passed on only when it claims to be
// farther than it was named (an honest node falsely named near the
// target). A liar that claims an ID near each target it is asked about,
// to end lookups among the fabricated nodes it names, is thus disowned
// at its first answer, and those nodes are never asked. Liars that agree
// on the IDs they give one another, and each claim at every query the ID
// it was named with (a ring), are not caught by this; what they cannot do
// is name themselves near an arbitrary target under IDs BEP 42 makes
// valid for their addresses, as one address has 8 valid 21-bit prefixes.
// So once a lookup knows K candidates with valid IDs (vouched: nodes at
// local and private addresses count when we started from them or a node
// at such an address named them), the K closest places that end it, and
// that an announce goes to, are the vouched nodes', however near others
// claim to be. Beside them it still asks the 4 nearest others
// (maxUnvouched), after the vouched ones and at most 8 in all
// (maxUnvouchedQueries), as honest nodes whose software ignores BEP 42
// hold peers too, and an announce goes to those of them that answered
// nearer than the Kth vouched as well, where clients that do not rank by
// BEP 42 look; before K are known distance alone decides, so lookups
// among mostly non-compliant nodes run as before, and vouched nodes that
// fail stop counting (a liar can name dead addresses under valid IDs). Config.InsecureIDs
// turns the preference off. A lookup also takes at
// most 2 candidates from one /24 (/64), local and private ranges exempt
// (maxLookupPerBlock): a block's owner picks from 2,048 valid prefixes.
// The block's places go to its nearest candidates that have not failed,
// not to the first named, so a liar cannot shut an honest node out by
// naming its block's neighbours first. A
// ring that owns many blocks and names its members under the valid IDs
// nearest the target still takes places in proportion to its addresses.
//
// Dual stack (BEP 32): a Node given an IPv6 socket beside its IPv4 one
// (Config.Conn6 or Listen6) runs the IPv4 and the IPv6 DHT side by side,
// each with its own routing table (a contact enters only the table of its
// family), BEP 42 tally and ID (the same ID at first, as BEP 32 asks,
// until a family's votes give it its own), token secrets, loop and
// bootstrap; the peer store is shared. Either socket may fail to bind:
// the node warns and runs on the other. Lookups, announces and bootstrap
// run in both families at once; the peers found are merged into one
// stream, each once, and an announce goes to the K closest nodes of each
// family. A query is answered with nodes of the families its want asks
// for, each from the table of its family and K at most of each, else of
// the querier's own family; get_peers values are always of the querier's
// family alone, whatever its want (the two DHTs are independent, as in
// libtorrent), so peers of a family go out only over that family's
// socket. Under an amplification bound an answer wanting both keeps K of
// the querier's family and as many of the other as fit
// krpc.AmplificationAllowance. While one family
// knows fewer than K nodes, the other's queries ask for both families
// and hand it what they learn, so a node with an entry point of one
// family joins both DHTs; a lookup whose family had no one to ask is run
// again once the other's has ended. Contacts of a family nobody asked
// for are dropped and counted (Stats.ForeignNodes). The state file holds
// each family's nodes in its own key and the IPv6 ID when it differs; a
// file of one family loads into either, and a node on an IPv6 socket alone
// takes (and saves back) the IPv6 ID. Config.WarmState starts a node
// from such a state held in memory (EncodeState makes one), its nodes put
// straight in the table as if they had just answered: how a simulation
// (internal/simnet/simdht) starts a network of long-running nodes
// without a bootstrap each. Conn6 must take IPv6 alone (udp6,
// or IPV6_V6ONLY on [::]); a Conn6 that is not a socket of its own (the
// DHT view of a socket shared with uTP) says so through an IPv6Only
// method. A single socket on [::] that is not IPv6-only carries both
// families in one table, as before.
//
// A state directory is used by one process at a time (an flock on its
// lock file, which a crash releases); a node that finds it taken runs
// without it, with a fresh ID, rather than share an ID or overwrite the
// other's table. Lookups start from the routing table and the node cache;
// short of K nodes, from the saved nodes and the bootstrap addresses,
// whose host names a lookup resolves itself if Bootstrap has not yet, so
// a cold start need not wait for Bootstrap. With BootstrapFallback and K
// saved nodes of a family, the bootstrap addresses are left out until a
// Bootstrap finds that none of the saved nodes answers.
//
// The Node is where the wire (package krpc: messages and the UDP
// Transport) meets the table (package routing): the two share only the ID
// and contact types of package krpc/nodeid and know nothing of each other.
//
// Terms: a "node" is a DHT participant (UDP, named by a 160-bit ID); a
// "peer" is a BitTorrent client (TCP) that a node stores under an
// info-hash. A "token" is what get_peers hands out and announce_peer must
// return: a hash of a secret rotated every 5 minutes and of the querier's
// IP, so a token is good for 5 to 10 minutes and only from that IP.
//
// Scrapes (BEP 33): the store remembers whether each peer announced with
// seed=1. A get_peers with scrape=1 also answers BFsd and BFpe, bloom
// filters of the seeds' and the other peers' IPs over every live peer of
// the info-hash; BloomEstimate turns a filter, or the OR of several nodes'
// filters, into a count. noseed=1 leaves seeds out of values.
//
// Samples (BEP 51): sample_infohashes answers how many info-hashes the
// store holds (num), up to 20 of them at random (samples), the nodes
// closest to the target, and interval, SampleInterval in seconds: one
// sample is served that long, so asking faster does not page through the
// store faster. It is redrawn sooner only when the store has outgrown it.
// Under an amplification bound the answer carries as many samples as fit
// beside the nodes (about 15, or 10 beside IPv6 nodes).
//
// Defences (BEP 42): our ID is derived from the external address that
// other nodes report in the "ip" key of their answers (and peers in BEP
// 10's "yourip"), and is regenerated when that address changes. Each /24
// (/64 for IPv6) has one vote, its latest, however many addresses or
// handshakes it has, and only a claim of the voter's family, and of a
// family the socket carries, counts. Each family has its own tally, as a
// dual-stack node has an address of each. An address is adopted once at
// least 4 of a family's last 32 voters, and more than two thirds of them,
// have agreed on it for a minute, and after the first adoption at most
// once per 30 minutes. A socket's ID derives from the IPv4 address,
// unless the socket is IPv6 only.
// Nodes whose IDs do not match their IP stay out of the routing table,
// local and private addresses exempt; a bucket holds at most one node per
// /24. Per-IP rate limits, temporary blocks, a send budget (one for the
// node, both sockets of a dual-stack node together) and an amplification
// bound live in the transport (package krpc) and are set through Config;
// under the bound a get_peers answer carries values or
// scrape filters alone. In the peer store one source (an IPv4 address, an
// IPv6 /64) holds at most 4 peers of an info-hash, a new port replacing
// its oldest, and makes at most 32 new entries a minute, so that one host
// with a valid token cannot push a swarm's peers out or flush the store;
// one IPv6 /48 holds at most 16 peers of an info-hash and makes at most
// 128 new entries a minute, its /64s together. In a full swarm a new
// entry displaces the oldest of the source that then holds the most, the
// oldest peer only when all hold one; so sources announcing at once
// displace each other before the swarm's lone peers. Re-announces are
// never limited. An attacker with many IPv4 addresses or many /48s can
// still replace a swarm's peers, one per address. Nodes learned outside the DHT (BEP 5
// port messages, which any peer can send in bulk) come in through
// OfferNode: at most 8 pings in flight (maxOfferPings, of the 32 maxPings
// the table's own pings share, so that those always find room), 64 offers
// waiting (maxOffers), the rest dropped, and one ping per source (an IPv4
// address, an IPv6 /64) a minute (offerEvery) for the last 1024 sources
// offered.
//
// Concurrency: per socket, one goroutine, the loop, owns the routing
// table, the token rotation and the ping bookkeeping. Queries are answered
// on the socket's reader without a round trip to the loop, from what the
// loop publishes (an immutable view of the table's usable contacts, the
// other socket's view for want, the token secrets)
// and the peer store, which has its own lock; the reader only notes each
// querier to the loop, without waiting and at most once a minute per
// querier, so that its entry is refreshed or it is pinged to be verified.
// Lookups run on the caller's goroutine and report the nodes that answered
// or failed as events; each one's end is told to Config.OnLookup, if set
// (metrics), on that goroutine. A lookup run under a context from
// WithTrace also records each query it sends in the Trace (address, log2
// distance to the target, when sent, slow and done, how it ended, peers
// and nodes returned, the node that named it), at most MaxTraceEvents;
// without one it records nothing. Nothing here reaches a public host unless
// the caller lists one in Config.Bootstrap (PublicRouters are only a list).
package dht
