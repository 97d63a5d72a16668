package metadata

// Limits on untrusted input. They are far above anything real torrents use
// and exist so that a hostile file or peer cannot make us allocate without
// bound.
const (
	// MaxMetadataSize caps a BEP 9 metadata_size, and so the info
	// dictionaries we fetch and hash.
	MaxMetadataSize = 16 << 20
	// MaxPieceLength caps the piece length: storage buffers whole pieces.
	MaxPieceLength = 64 << 20
	// MaxFiles caps the number of files, padding files included.
	MaxFiles = 100_000
	// MaxPathLen caps a file's path in bytes, components joined by '/'.
	MaxPathLen = 4096
	// MetadataPieceSize is the BEP 9 metadata piece size.
	MetadataPieceSize = 16 << 10

	// maxMetaInfoSize caps a .torrent file: an info dictionary at
	// MaxMetadataSize plus generous room for announce lists and comments.
	maxMetaInfoSize = 64 << 20
	// maxNesting caps bencode nesting. A BEP 52 "file tree" nests one
	// dictionary per path component, and a path of MaxPathLen bytes has at
	// most MaxPathLen/2 components; the rest is the few levels around it.
	maxNesting = MaxPathLen/2 + 16
	// maxNodes caps the BEP 5 "nodes" kept from a .torrent: a handful
	// bootstraps the DHT, more is only memory.
	maxNodes = 256
	// maxTrackers caps the announce-list URLs kept from a .torrent, each
	// a tracker the swarm may ask.
	maxTrackers = 256
	// maxOptionalSize caps the encoding of an optional .torrent key
	// (announce-list, nodes, comment...): decoded lists cost several times
	// their encoding, and none of these is worth megabytes.
	maxOptionalSize = 1 << 20
)
