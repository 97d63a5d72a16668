// Package metadata is what a trackerless client knows about a torrent before
// it has any of the content: the info dictionary, the .torrent file around
// it, and the exchange that fetches the info dictionary from peers when all
// we started with was a magnet link.
//
// It implements:
//
//   - BEP 3: the metainfo file and its info dictionary (single-file and
//     multi-file), piece hashes, and the info-hash.
//   - BEP 47: padding files (attr "p"), which occupy piece space but are
//     never written to disk.
//   - BEP 52: only as much as hybrid torrents need. Their "meta version" and
//     "file tree" keys are accepted and ignored, and they are downloaded by
//     their v1 piece layout; v2-only torrents are refused.
//   - BEP 5: the "nodes" key of a trackerless torrent, DHT nodes to
//     bootstrap from.
//   - BEP 3 "announce" and BEP 12 "announce-list": tracker URLs, parsed
//     and written (Create), not contacted here.
//   - BEP 9 over BEP 10: the ut_metadata messages, the state of fetching an
//     info dictionary from several peers (Fetch), and serving our own
//     (ServeMetadata). Everything here is pure state: no sockets, no
//     goroutines, no clock; callers pass the time in. Fetch trusts no
//     single peer: each claimed metadata_size is fetched from the peers
//     that claimed it (at most MaxCandidateSizes sizes at once; a size
//     that delivers nothing for the retry time gives its place to one
//     that waits), a piece is taken only from a peer asked for it, and an
//     assembly that fails the hash is fetched again one peer at a time
//     until the liar is known. Nothing a peer does holds the fetch for
//     good: a turn, a place or a refusal each lapse when they yield
//     nothing.
//
// Terms:
//
//   - info dictionary (info dict): the bencoded dictionary under the "info"
//     key of a .torrent. It alone describes the content.
//   - info-hash: the SHA-1 of the info dictionary, computed over its exact
//     bytes as they appear in the file or on the wire, never over a
//     re-encoding, so that unknown keys and odd key orders hash as the
//     creator meant.
//   - metainfo: a whole .torrent file (MetaInfo).
//   - metadata: BEP 9's name for the info dictionary when it travels between
//     peers, in metadata pieces of MetadataPieceSize bytes (the last may be
//     shorter). Not to be confused with torrent pieces of PieceLength bytes.
//   - padding file: a BEP 47 file of zeros that aligns the next file to a
//     piece boundary; it has a place in the byte stream but not on disk.
//
// File names are the torrent's, with two exceptions. A name or path
// component that could leave the download directory (".." , a separator,
// NUL, ...) makes the whole torrent refused with ErrUnsafePath. Control
// characters (0x01-0x1f and 0x7f) are replaced with '_', as libtorrent
// does, in Info.Name and File.Path alike, so that what is written to disk
// and what is shown are the same harmless name: a name that clears the
// screen or ends in a newline is legal on Unix but a trap for every
// terminal and script that lists it. The info-hash is over the original
// bytes, untouched. Two files whose names differ only in such characters
// collide, and the torrent is refused like any other duplicate.
//
// All input is untrusted: parsing returns errors, never panics, and memory
// is bounded by the input size and the Max* limits. Parsing walks the
// bencode tokens by hand: keys we do not use are skipped without building
// their values, and only the integers and strings we read are converted, so
// that what a parse allocates stays within a small multiple of its input
// (a file list's paths, at a 16-byte string per one-byte component, are the
// most). Encoding is done with github.com/anacrolix/torrent/bencode.
package metadata
