package metadata

import (
	"crypto/sha1"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/anacrolix/torrent/bencode"
)

// CreateOptions tune Create.
type CreateOptions struct {
	// PieceLength is the piece size in bytes; 0 chooses one (see
	// choosePieceLength).
	PieceLength int64
	// Nodes are host:port DHT nodes written to the "nodes" key.
	Nodes []string
	// Trackers are BEP 12 tiers of announce URLs: the first is written
	// to "announce", and all of them to "announce-list" when there is
	// more than one. The caller checks the URLs.
	Trackers  [][]string
	CreatedBy string
	Private   bool
}

// Piece length choice: small pieces verify and spread sooner, but every
// piece costs 20 bytes of metadata, which BEP 9 peers must fetch before
// anything else.
const (
	minAutoPieceLength = 16 << 10
	maxAutoPieceLength = 16 << 20
	targetPieces       = 1500
)

// choosePieceLength is the smallest power of two from 16 KiB up with at
// most targetPieces pieces, capped at 16 MiB.
func choosePieceLength(total int64) int64 {
	pl := int64(minAutoPieceLength)
	for pl < maxAutoPieceLength && (total+pl-1)/pl > targetPieces {
		pl *= 2
	}
	return pl
}

// wireInfo is an info dictionary as Create writes it; the encoder sorts
// keys by tag. Length is a pointer so that a 0-byte single file still has
// its length key.
type wireInfo struct {
	Files       []wireFile `bencode:"files,omitempty"`
	Length      *int64     `bencode:"length,omitempty"`
	Name        string     `bencode:"name"`
	PieceLength int64      `bencode:"piece length"`
	Pieces      []byte     `bencode:"pieces"`
	Private     int64      `bencode:"private,omitempty"`
}

type wireFile struct {
	Length int64    `bencode:"length"`
	Path   []string `bencode:"path"`
}

// sourceFile is a file to hash: where it is and where it goes.
type sourceFile struct {
	osPath string
	path   []string // components below the torrent's name
	length int64
}

// Create hashes the file or directory at path and builds a MetaInfo,
// trackerless (no announce) unless opts.Trackers names some. In a directory, only regular files count:
// symlinks are skipped, so that a torrent never carries content from
// outside the directory, and empty directories cannot be expressed. Files
// are in path order, so the same tree always gives the same info-hash.
func Create(path string, opts CreateOptions) (*MetaInfo, error) {
	if opts.PieceLength < 0 || opts.PieceLength > MaxPieceLength {
		return nil, fmt.Errorf("create: piece length %d not in 1..%d", opts.PieceLength, MaxPieceLength)
	}
	for _, n := range opts.Nodes {
		if _, _, err := splitNode(n); err != nil {
			return nil, fmt.Errorf("create: %w", err)
		}
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("create: %w", err)
	}
	name := filepath.Base(filepath.Clean(path))
	if err := checkComponent(name); err != nil {
		return nil, fmt.Errorf("create: name %q: %w", name, err)
	}

	var files []sourceFile
	single := st.Mode().IsRegular()
	switch {
	case single:
		files = []sourceFile{{osPath: path, length: st.Size()}}
	case st.IsDir():
		files, err = listFiles(path)
		if err != nil {
			return nil, fmt.Errorf("create: %w", err)
		}
		if len(files) == 0 {
			return nil, fmt.Errorf("create: no regular files in %s", path)
		}
	default:
		return nil, fmt.Errorf("create: %s is neither a regular file nor a directory", path)
	}

	var total int64
	for _, f := range files {
		total += f.length
	}
	pl := opts.PieceLength
	if pl == 0 {
		pl = choosePieceLength(total)
	}
	pieces, err := hashPieces(files, pl)
	if err != nil {
		return nil, fmt.Errorf("create: %w", err)
	}

	wi := wireInfo{Name: name, PieceLength: pl, Pieces: pieces}
	if opts.Private {
		wi.Private = 1
	}
	if single {
		wi.Length = &files[0].length
	} else {
		wi.Files = make([]wireFile, len(files))
		for i, f := range files {
			wi.Files[i] = wireFile{Length: f.length, Path: f.path}
		}
	}
	raw, err := bencode.Marshal(wi)
	if err != nil {
		return nil, fmt.Errorf("create: %w", err)
	}
	// Parsing what we wrote applies the same checks as for anyone else's
	// torrent (unsafe file names, too many files) and lays it out.
	info, err := ParseInfo(raw)
	if err != nil {
		return nil, fmt.Errorf("create: %w", err)
	}
	mi := &MetaInfo{
		Info:      info,
		Nodes:     slices.Clone(opts.Nodes),
		CreatedBy: opts.CreatedBy,
	}
	var tiers [][]string
	n := 0
	for _, t := range opts.Trackers {
		if len(t) > 0 {
			tiers = append(tiers, slices.Clone(t))
			n += len(t)
		}
	}
	if n > 0 {
		mi.Announce = tiers[0][0]
		if n > 1 {
			mi.AnnounceList = tiers
		}
	}
	return mi, nil
}

// listFiles returns the regular files below dir, sorted by path.
func listFiles(dir string) ([]sourceFile, error) {
	var files []sourceFile
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			// Directories are walked, not listed; symlinks, devices, sockets
			// and pipes are skipped.
			return nil
		}
		if len(files) == MaxFiles {
			return fmt.Errorf("more than %d files", MaxFiles)
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		files = append(files, sourceFile{
			osPath: p,
			path:   strings.Split(filepath.ToSlash(rel), "/"),
			length: fi.Size(),
		})
		return nil
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(files, func(a, b sourceFile) int { return slices.Compare(a.path, b.path) })
	return files, nil
}

// hashPieces streams the files, in order, through one reused piece buffer:
// memory is one piece whatever the size of the content.
func hashPieces(files []sourceFile, pl int64) ([]byte, error) {
	buf := make([]byte, pl)
	var pieces []byte
	fill := 0
	for _, f := range files {
		if err := func() error {
			fh, err := os.Open(f.osPath)
			if err != nil {
				return err
			}
			defer fh.Close()
			left := f.length
			for left > 0 {
				n := int64(len(buf) - fill)
				n = min(n, left)
				if _, err := io.ReadFull(fh, buf[fill:fill+int(n)]); err != nil {
					if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
						return fmt.Errorf("%s: shrank while hashing", f.osPath)
					}
					return err
				}
				fill += int(n)
				left -= n
				if fill == len(buf) {
					h := sha1.Sum(buf)
					pieces = append(pieces, h[:]...)
					fill = 0
				}
			}
			return nil
		}(); err != nil {
			return nil, err
		}
	}
	if fill > 0 {
		h := sha1.Sum(buf[:fill])
		pieces = append(pieces, h[:]...)
	}
	return pieces, nil
}
