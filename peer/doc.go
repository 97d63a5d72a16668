// Package peer is the BitTorrent swarm engine (BEP 3, with BEP 10's
// extension protocol, BEP 9's ut_metadata and BEP 5's port message): one
// Torrent downloads a torrent from the peers the DHT finds and serves it
// to the peers that ask.
//
// Terms: a "peer" is a BitTorrent client on TCP (a "node" is a DHT
// participant on UDP); a "piece" is a hashed unit of the torrent, a
// "block" the 16 KiB unit requested on the wire.
//
// Concurrency: each connection has a reader goroutine, which frames and
// decodes messages (length checked before allocating, a deadline on every
// read), and a writer goroutine, which drains a bounded queue. One
// goroutine, the Torrent's loop, owns everything else: peer states, the
// piece picker, requests, the choker, the BEP 9 fetch. Hashing and writing
// a finished piece happen on a worker that reports back.
//
// Data safety: blocks are held in memory until their piece hashes right,
// then written; nothing unverified reaches the disk. A peer that was the
// only source of a piece that failed its hash is banned; when several
// contributed, the piece is fetched again from a single peer so that a
// second failure has one culprit.
//
// Sub-package wire is the pure message codec.
package peer
