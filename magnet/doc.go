// Package magnet parses and formats BitTorrent magnet URIs.
//
// It implements the magnet link of BEP 9 (xt=urn:btih:), the v2 and hybrid
// form of BEP 52 (xt=urn:btmh:), peer addresses (x.pe) from BEP 9, web seeds
// (ws) from BEP 19 and file selection (so) from BEP 53. It does no network
// I/O and treats every input as hostile: Parse returns an error, never a
// panic, and its work is bounded by a cap on input length and parameter
// count.
//
// Terms:
//
//   - info-hash v1: the 20-byte SHA-1 of a torrent's bencoded info
//     dictionary, written in a magnet link as 40 hex digits or 32 base32
//     characters (RFC 4648) after "urn:btih:".
//   - info-hash v2: the 32-byte SHA-256 of a BEP 52 info dictionary, written
//     as a multihash after "urn:btmh:": the prefix "1220" (0x12 = SHA-256,
//     0x20 = 32 bytes long) followed by 64 hex digits.
//   - hybrid link: one carrying both a v1 and a v2 info-hash for the same
//     torrent.
//
// Parse is deliberately lenient where real clients disagree (numbered
// parameters such as "tr.1", either case in the scheme, parameter names and
// hex, unknown parameters ignored for forward compatibility) and strict where
// a mistake would point the product at the wrong torrent or peer (malformed
// or conflicting info-hashes, malformed x.pe addresses).
//
// Link.String produces one canonical form, so that Parse(l.String()) gives
// back l for every Link that Parse returned.
package magnet
