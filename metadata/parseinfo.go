package metadata

import (
	"crypto/sha1"
	"errors"
	"fmt"
	"strings"

	"github.com/anacrolix/torrent/bencode"
)

// ErrInvalidInfo is wrapped by every error ParseInfo returns.
var ErrInvalidInfo = errors.New("invalid info dictionary")

// ErrV2Only is returned for a BEP 52 torrent without a v1 layout: we hash
// pieces with SHA-1 only.
var ErrV2Only = errors.New("v2-only torrents are not supported")

// rawInfo is the info dictionary as decoded. Pointers tell a missing key
// from a zero value; keys we only need to skip are kept raw so that the
// decoder does not build values for them.
type rawInfo struct {
	Name        *string       `bencode:"name"`
	NameUTF8    *string       `bencode:"name.utf-8"`
	PieceLength *int64        `bencode:"piece length"`
	Pieces      *[]byte       `bencode:"pieces"`
	Length      *int64        `bencode:"length"`
	Files       bencode.Bytes `bencode:"files"` // counted before it is decoded
	Private     int64         `bencode:"private"`
	Attr        string        `bencode:"attr"`

	MetaVersion *int64        `bencode:"meta version"`
	FileTree    bencode.Bytes `bencode:"file tree"`
}

type rawFile struct {
	Length   *int64    `bencode:"length"`
	Path     *pathList `bencode:"path"`
	PathUTF8 *pathList `bencode:"path.utf-8"`
	Attr     string    `bencode:"attr"`
}

// pathList is a file's path components. It refuses encodings too long to
// hold a path of MaxPathLen bytes before decoding them, so that a hostile
// path costs no more memory than a legitimate one: a component of n bytes
// takes at most n+5 bytes to encode, and there are at most MaxPathLen/2+1.
type pathList []string

func (p *pathList) UnmarshalBencode(b []byte) error {
	if len(b) > 4*MaxPathLen {
		return fmt.Errorf("path longer than %d bytes", MaxPathLen)
	}
	return decodeAll(b, (*[]string)(p))
}

// skipValue decodes any value to nothing: a list of them counts a list's
// elements without building them.
type skipValue struct{}

func (*skipValue) UnmarshalBencode([]byte) error { return nil }

// listLen is the number of elements of the bencoded list b.
func listLen(b []byte) (int, error) {
	if len(b) == 0 || b[0] != 'l' {
		return 0, errors.New("not a list")
	}
	var l []skipValue
	if err := decodeAll(b, &l); err != nil {
		return 0, err
	}
	return len(l), nil
}

// ParseInfo validates raw, a bencoded info dictionary, and returns it with
// Raw set to raw (not copied) and InfoHash to its SHA-1.
func ParseInfo(raw []byte) (*Info, error) {
	info, err := parseInfo(raw)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidInfo, err)
	}
	return info, nil
}

func parseInfo(raw []byte) (*Info, error) {
	if len(raw) > MaxMetadataSize {
		// Such an info dictionary could never be exchanged under BEP 9.
		return nil, fmt.Errorf("%d bytes, more than %d", len(raw), MaxMetadataSize)
	}
	// The decoder would also accept a one-element list holding a dict.
	if len(raw) == 0 || raw[0] != 'd' {
		return nil, errors.New("not a bencoded dictionary")
	}
	var ri rawInfo
	if err := decodeAll(raw, &ri); err != nil {
		return nil, err
	}
	if ri.Pieces == nil && ri.Length == nil && len(ri.Files) == 0 &&
		(ri.MetaVersion != nil || len(ri.FileTree) > 0) {
		return nil, ErrV2Only
	}

	info := &Info{Raw: raw, InfoHash: sha1.Sum(raw), Private: ri.Private == 1}

	name := ri.Name
	if ri.NameUTF8 != nil {
		name = ri.NameUTF8
	}
	if name == nil {
		return nil, errors.New("missing name")
	}
	if err := checkPath([]string{*name}); err != nil {
		return nil, fmt.Errorf("name: %w", err)
	}
	info.Name = *name

	if ri.PieceLength == nil {
		return nil, errors.New("missing piece length")
	}
	if pl := *ri.PieceLength; pl <= 0 || pl > MaxPieceLength {
		return nil, fmt.Errorf("piece length %d not in 1..%d", pl, MaxPieceLength)
	}
	info.PieceLength = *ri.PieceLength

	var err error
	switch {
	case ri.Length != nil && len(ri.Files) > 0:
		return nil, errors.New("both length and files: neither single-file nor multi-file")
	case ri.Length != nil:
		if *ri.Length < 0 {
			return nil, fmt.Errorf("negative length %d", *ri.Length)
		}
		info.Files = []File{{Path: []string{info.Name}, Length: *ri.Length, Attr: ri.Attr}}
		info.Length = *ri.Length
	case len(ri.Files) > 0:
		info.Files, info.Length, err = parseFiles(info.Name, ri.Files)
		if err != nil {
			return nil, err
		}
	default:
		return nil, errors.New("neither length nor files")
	}

	if ri.Pieces == nil {
		return nil, errors.New("missing pieces")
	}
	pieces := *ri.Pieces
	if len(pieces)%HashLen != 0 {
		return nil, fmt.Errorf("pieces length %d not a multiple of %d", len(pieces), HashLen)
	}
	// Written to avoid overflow near the top of int64.
	want := info.Length / info.PieceLength
	if info.Length%info.PieceLength != 0 {
		want++
	}
	if got := int64(len(pieces) / HashLen); got != want {
		return nil, fmt.Errorf("%d piece hashes for %d bytes in pieces of %d: want %d",
			got, info.Length, info.PieceLength, want)
	}
	info.Pieces = make([][HashLen]byte, want)
	for i := range info.Pieces {
		copy(info.Pieces[i][:], pieces[i*HashLen:])
	}
	return info, nil
}

// parseFiles lays out a multi-file torrent: paths prefixed by name, offsets
// in the byte stream, and the total length.
func parseFiles(name string, raw []byte) ([]File, int64, error) {
	// Counted first: decoded, each entry costs far more than its
	// two-byte minimum encoding.
	n, err := listLen(raw)
	if err != nil {
		return nil, 0, fmt.Errorf("files: %w", err)
	}
	if n == 0 {
		return nil, 0, errors.New("empty files list")
	}
	if n > MaxFiles {
		return nil, 0, fmt.Errorf("%d files, more than %d", n, MaxFiles)
	}
	rfs := make([]rawFile, 0, n)
	if err := decodeAll(raw, &rfs); err != nil {
		return nil, 0, fmt.Errorf("files: %w", err)
	}
	files := make([]File, len(rfs))
	var off int64
	for i, rf := range rfs {
		if rf.Length == nil {
			return nil, 0, fmt.Errorf("file %d: missing length", i)
		}
		n := *rf.Length
		if n < 0 {
			return nil, 0, fmt.Errorf("file %d: negative length %d", i, n)
		}
		if off > maxInt64-n {
			return nil, 0, fmt.Errorf("file %d: total length overflows", i)
		}
		p := rf.Path
		if rf.PathUTF8 != nil {
			p = rf.PathUTF8
		}
		if p == nil {
			return nil, 0, fmt.Errorf("file %d: missing path", i)
		}
		if len(*p) == 0 {
			return nil, 0, fmt.Errorf("file %d: %w: empty path", i, ErrUnsafePath)
		}
		path := make([]string, 0, 1+len(*p))
		path = append(path, name)
		path = append(path, *p...)
		if err := checkPath(path); err != nil {
			return nil, 0, fmt.Errorf("file %d (%q): %w", i, strings.Join(*p, "/"), err)
		}
		files[i] = File{
			Path:    path,
			Length:  n,
			Offset:  off,
			Padding: strings.ContainsRune(rf.Attr, 'p'),
			Attr:    rf.Attr,
		}
		off += n
	}
	if err := checkLayout(files); err != nil {
		return nil, 0, err
	}
	return files, off, nil
}

const maxInt64 = 1<<63 - 1
