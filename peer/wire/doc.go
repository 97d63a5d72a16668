// Package wire is the BitTorrent peer-wire codec: the handshake, the
// length-prefixed messages that follow it, and the BEP 10 extended handshake.
//
// It is deliberately pure: no I/O, no clocks, no goroutines. Encoders append
// to a caller's []byte and decoders parse a []byte, so the connection code
// owns buffering, deadlines and — most importantly — the decision of how much
// to read. That caller reads the 4-byte big-endian length prefix itself,
// rejects it against [MaxMessageLen] before allocating anything, reads the
// payload and hands it to [ParseMessage]. Keeping the limit check out of this
// package would be wrong only if this package read from the network; it does
// not.
//
// Specifications implemented:
//
//   - BEP 3, The BitTorrent Protocol Specification: the handshake and the
//     core messages choke through cancel.
//   - BEP 5, DHT Protocol: only the port message (id 9) and the reserved
//     DHT bit; the DHT itself lives elsewhere.
//   - BEP 6, Fast Extension: suggest piece, have all, have none, reject
//     request and allowed fast (ids 0x0D-0x11), the reserved bit
//     (reserved[7] & 0x04, set by [DefaultReserved]) and the allowed fast
//     set generator ([AllowedFastSet]). The codec parses these messages
//     whatever the handshakes said; refusing them from a peer that did not
//     set the bit is the connection's job.
//   - BEP 10, Extension Protocol: the extended message (id 20), the reserved
//     extension bit, and the extended handshake dictionary. BEP 9
//     (ut_metadata) rides on top of it and is named here only through
//     [ExtMetadataName] and the metadata_size key.
//   - BEP 7, IPv6 Tracker Extension: only the ipv4 and ipv6 keys of the
//     extended handshake, the sender's own addresses; a value of the wrong
//     length is dropped and counted in [ExtendedHandshake.Dropped].
//   - BEP 11, Peer Exchange: the ut_pex payload ([Pex], [ParsePex]),
//     IPv4 and IPv6 contacts with their flags, at most [MaxPexPeers] added
//     and as many dropped per message. How often to send one and what to
//     do with the contacts is the caller's business.
//
// Terms used throughout:
//
//   - message: one length-prefixed unit on the wire after the handshake. The
//     prefix counts the bytes that follow it; a prefix of zero is a
//     keep-alive.
//   - payload: the bytes of a message after the length prefix, starting
//     with the message id. (For extended messages, "payload" in [Message]
//     means the bytes after the extended id, as BEP 10 uses the word.)
//   - piece: a hash-verified unit of the torrent, of the size given in the
//     info dictionary; the have and bitfield messages speak in pieces.
//   - block: a sub-range of a piece that is requested and transferred in a
//     single request / piece message pair, conventionally [BlockSize] bytes.
//     The piece message is misnamed by BEP 3: it carries a block.
package wire
