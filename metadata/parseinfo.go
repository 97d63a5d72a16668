package metadata

import (
	"crypto/sha1"
	"errors"
	"fmt"
	"strings"
)

// ErrInvalidInfo is wrapped by every error ParseInfo returns.
var ErrInvalidInfo = errors.New("invalid info dictionary")

// ErrV2Only is returned for a BEP 52 torrent without a v1 layout: we hash
// pieces with SHA-1 only.
var ErrV2Only = errors.New("v2-only torrents are not supported")

// rawInfo is the info dictionary as read by readInfo. Pointers tell a
// missing key from a zero value; Files and FileTree alias the input.
type rawInfo struct {
	Name        *string
	NameUTF8    *string
	PieceLength *int64
	Pieces      []byte // aliases the input; nil if missing
	Length      *int64
	Files       []byte // counted before it is decoded
	Private     int64
	Attr        string

	MetaVersion *int64
	FileTree    []byte
}

// readInfo reads the keys of the info dictionary raw that we use; other
// keys are skipped, never decoded.
func readInfo(raw []byte) (*rawInfo, error) {
	var ri rawInfo
	err := forEachEntry(raw, func(k, v []byte) error {
		var err error
		switch string(k) {
		case "name":
			ri.Name, err = stringPtr(v)
		case "name.utf-8":
			ri.NameUTF8, err = stringPtr(v)
		case "piece length":
			ri.PieceLength, err = intPtr(v)
		case "pieces":
			ri.Pieces, err = stringValue(v)
		case "length":
			ri.Length, err = intPtr(v)
		case "files":
			ri.Files = v
		case "private":
			ri.Private, err = intValue(v)
		case "attr":
			ri.Attr, err = stringOf(v)
		case "meta version":
			ri.MetaVersion, err = intPtr(v)
		case "file tree":
			ri.FileTree = v
		}
		if err != nil {
			return fmt.Errorf("%q: %w", k, err)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return &ri, nil
}

type rawFile struct {
	Length   *int64
	Path     []string // behind the torrent's name; nil if missing
	PathUTF8 []string
	Attr     string
}

// readFile reads one entry of the "files" list like readInfo.
func readFile(name string, b []byte) (rawFile, error) {
	var rf rawFile
	err := forEachEntry(b, func(k, v []byte) error {
		var err error
		switch string(k) {
		case "length":
			rf.Length, err = intPtr(v)
		case "path":
			rf.Path, err = readPath(name, v)
		case "path.utf-8":
			rf.PathUTF8, err = readPath(name, v)
		case "attr":
			rf.Attr, err = stringOf(v)
		}
		if err != nil {
			return fmt.Errorf("%q: %w", k, err)
		}
		return nil
	})
	return rf, err
}

// readPath reads a file's path components behind name. It refuses
// encodings too long to hold a path of MaxPathLen bytes before reading
// them, so that a hostile path costs no more memory than a legitimate one:
// a component of n bytes takes at most n+5 bytes to encode, and there are
// at most MaxPathLen/2+1. Counted first, the components are read into a
// slice of the right size, with no garbage from growing one.
func readPath(name string, b []byte) ([]string, error) {
	if len(b) > 4*MaxPathLen {
		return nil, fmt.Errorf("path longer than %d bytes", MaxPathLen)
	}
	n, err := listLen(b)
	if err != nil {
		return nil, err
	}
	path := make([]string, 1, 1+n)
	path[0] = name
	err = forEachElem(b, func(e []byte) (bool, error) {
		c, err := stringOf(e)
		path = append(path, sanitizeComponent(c))
		return err == nil, err
	})
	if err != nil {
		return nil, err
	}
	return path, nil
}

// listLen is the number of elements of the bencoded list b.
func listLen(b []byte) (int, error) {
	n := 0
	err := forEachElem(b, func([]byte) (bool, error) {
		n++
		return true, nil
	})
	return n, err
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
	ri, err := readInfo(raw)
	if err != nil {
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
	info.Name = sanitizeComponent(*name)
	if err := checkPath([]string{info.Name}); err != nil {
		return nil, fmt.Errorf("name: %w", err)
	}

	if ri.PieceLength == nil {
		return nil, errors.New("missing piece length")
	}
	if pl := *ri.PieceLength; pl <= 0 || pl > MaxPieceLength {
		return nil, fmt.Errorf("piece length %d not in 1..%d", pl, MaxPieceLength)
	}
	info.PieceLength = *ri.PieceLength

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
	pieces := ri.Pieces
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
	files := make([]File, 0, n)
	var off int64
	err = forEachElem(raw, func(v []byte) (bool, error) {
		i := len(files)
		f, err := parseFile(name, v, off)
		if err != nil {
			return false, fmt.Errorf("file %d: %w", i, err)
		}
		files = append(files, f)
		off += f.Length
		return true, nil
	})
	if err != nil {
		return nil, 0, err
	}
	if err := checkLayout(files); err != nil {
		return nil, 0, err
	}
	return files, off, nil
}

// parseFile reads one entry of the "files" list, a file that starts at
// offset off.
func parseFile(name string, v []byte, off int64) (File, error) {
	rf, err := readFile(name, v)
	if err != nil {
		return File{}, err
	}
	if rf.Length == nil {
		return File{}, errors.New("missing length")
	}
	n := *rf.Length
	if n < 0 {
		return File{}, fmt.Errorf("negative length %d", n)
	}
	if off > maxInt64-n {
		return File{}, errors.New("total length overflows")
	}
	p := rf.Path
	if rf.PathUTF8 != nil {
		p = rf.PathUTF8
	}
	if p == nil {
		return File{}, errors.New("missing path")
	}
	if len(p) == 1 {
		return File{}, fmt.Errorf("%w: empty path", ErrUnsafePath)
	}
	if err := checkPath(p); err != nil {
		return File{}, fmt.Errorf("path %q: %w", strings.Join(p[1:], "/"), err)
	}
	return File{
		Path:    p,
		Length:  n,
		Offset:  off,
		Padding: strings.ContainsRune(rf.Attr, 'p'),
		Attr:    rf.Attr,
	}, nil
}

const maxInt64 = 1<<63 - 1
