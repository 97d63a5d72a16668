package metadata

import "errors"

// HashLen is the length of a v1 info-hash and of a v1 piece hash (SHA-1).
const HashLen = 20

// InfoHash identifies a torrent: the SHA-1 of its bencoded info dictionary.
type InfoHash [HashLen]byte

// Info is a validated v1 info dictionary (BEP 3), laid out for storage.
type Info struct {
	// Name is the suggested name: the file name of a single-file torrent,
	// the top directory of a multi-file one. Already checked to be one
	// safe path component.
	Name        string
	PieceLength int64
	// Pieces holds the SHA-1 of each piece, in order.
	Pieces [][HashLen]byte
	// Files are in torrent order with their byte offsets. Path is relative
	// to the download directory: [Name] for a single-file torrent,
	// [Name, dir..., file] for a multi-file one. Every component is safe.
	Files []File
	// Length is the total of all files, padding files included: the byte
	// stream the pieces cover.
	Length  int64
	Private bool
	// Raw is the exact bencoded info dictionary; InfoHash is its SHA-1.
	Raw      []byte
	InfoHash InfoHash
}

// File is one file of a torrent.
type File struct {
	Path    []string
	Length  int64
	Offset  int64 // where the file starts in the torrent's byte stream
	Padding bool  // BEP 47 attr "p": zeros, never written to disk
	Attr    string
}

// NumPieces is the number of pieces.
func (i *Info) NumPieces() int { return len(i.Pieces) }

// PieceSize is the length of piece p: PieceLength for all but the last.
func (i *Info) PieceSize(p int) int64 {
	if p == len(i.Pieces)-1 {
		return i.Length - int64(p)*i.PieceLength
	}
	return i.PieceLength
}

// ErrUnsafePath is wrapped by errors for torrents whose file names would
// leave the download directory (.., absolute paths, separators inside a
// component, empty components).
var ErrUnsafePath = errors.New("unsafe path in torrent")
