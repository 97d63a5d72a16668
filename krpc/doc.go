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
// (ro). Messages are plain structs encoded with
// github.com/anacrolix/torrent/bencode; Parse validates untrusted bytes in
// layers (cheap shape checks, a bounded-depth decode, then exact field
// lengths) and returns an error, never a panic.
//
// The Transport knows nothing of routing tables or lookups: it assigns
// transaction IDs, matches each response to its query by (transaction ID,
// address), times queries out, hands incoming queries to a Handler, and
// answers malformed queries with error 203. Everything it drops is counted.
package krpc
