// Package krpc is the wire layer of the Mainline DHT (BEP 5): KRPC messages,
// the compact node and peer encodings, and a Transport that runs queries and
// answers over one UDP socket.
//
// Terms: a "node" is a DHT participant reached over UDP and named by a 160-bit
// ID; a "peer" is a BitTorrent client reached over TCP at an address found
// through the DHT. Compact node info is 26 bytes for IPv4 (ID, IP, port) and
// 38 for IPv6 (BEP 32); compact peer info is 6 or 18 bytes.
//
// Message fields follow BEP 5 (t, y, q, a, r, e, v), BEP 42 (ip) and BEP 43
// (ro). Messages are plain structs decoded with
// github.com/anacrolix/torrent/bencode; Parse validates untrusted bytes in
// layers (cheap shape checks, a bounded-depth decode, then exact field
// lengths) and returns an error, never a panic. Msg.Append is a
// hand-written encoder that writes exactly what the reflection encoder
// would, without allocating. The Transport decodes queries in canonical
// form on a fast path that accepts only what Parse accepts, with the same
// result, into reused storage when the Handler borrows them
// (Config.BorrowQuery), so answering a query need not allocate.
//
// Layering: the ID and the contact that messages carry are package
// nodeid's (krpc/nodeid, which imports nothing of ours); routing files the
// same types into its table and imports nodeid, not krpc, so the wire and
// the table know nothing of each other and package dht joins them. The
// Transport and its abuse limiter stay here beside the codec, as the design
// gives the wire the socket: admission reads a datagram's t and y with the
// codec's token walk before any decode, exempts answers by the Transport's
// own table of outstanding transactions, and bounds an answer by its
// encoded size, so parting them would only export those internals to each
// other.
//
// The Transport knows nothing of routing tables or lookups: it assigns
// transaction IDs (TxIDLen random bytes, unique among its outstanding
// queries, so that no node can predict the IDs of our queries to others),
// matches each response to its query by (transaction ID, address: IP and
// port), times queries out, hands incoming queries to a Handler, and
// answers malformed queries with error 203. Everything it drops is counted,
// and queries in and out by method too, the method sorted into a fixed
// set of classes (MethodClass: the five methods named here and "other"),
// so that what strangers put in "q" cannot grow the counters.
//
// Abuse limits (Config; off unless set, the Default* constants are the
// values for a public node). An incoming datagram is checked, cheapest
// first: size (MaxPacket) → one walk over its tokens, which finds its
// top-level t and y without decoding → the first datagram that reads as
// a response or error with a t we have outstanding to exactly its source
// address passes unpaid, even from a blocked source (our IDs are random,
// so a spoofer who gets a node blocked cannot forge its answers; one per
// transaction, so repeats pay; a t or y written twice or not as a plain
// string never reads as one: the decoder's reading of those is not the
// walk's) → block list (dropped unread, Stats.Blocked) → the source's
// token bucket, RatePerIP/BurstPerIP, charged for every other datagram,
// garbage included (Stats.RateLimited; BlockFactor × BurstPerIP such
// drops within BlockWindow block the source for BlockFor) → at most one
// decode → dispatch. A datagram let through unpaid that decodes as
// anything but the answer it seemed (garbage, a query, a reply to
// nothing) pays then, before it is handled, and is dropped if over the
// limit. Sources are IPv4 addresses or IPv6 /64s, kept in
// LRUs bounded by MaxTrackedIPs and MaxBlockedIPs. Every answer must fit
// max(MaxAmplification × the query's size, AmplificationAllowance) bytes
// (else dropped, Stats.Amplification) and a token of the global send budget
// SendRate/SendBurst, or SendLimiter, which Transports may share (else
// dropped, Stats.SendDropped); our own queries
// wait for a send token instead. Per-source limits cannot stop floods from
// spoofed, ever-new addresses: each gets one burst; the send budget bounds
// what we reflect.
package krpc
