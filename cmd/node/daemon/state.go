package daemon

import (
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"time"

	"node/metadata"
	"node/storage/atomicfile"
)

// Files in the state directory.
const (
	torrentsFile = "torrents.json"
	// torrentsDir holds <infohash>.torrent for each torrent whose info
	// dictionary is known, so that a restart does not fetch it again.
	torrentsDir  = "torrents"
	stateVersion = 1
	// MaxStateBytes bounds the torrents file read back: MaxTorrents
	// records with a long magnet link each fit many times over.
	MaxStateBytes = 64 << 20
	// MaxTorrentFileBytes bounds a saved .torrent read back: metadata's
	// own bound on an info dictionary, and room for the rest.
	MaxTorrentFileBytes = 17 << 20
)

// record is what survives a restart of one torrent.
type record struct {
	InfoHash string `json:"info_hash"`
	// Magnet is the link it was added by; empty for a .torrent.
	Magnet string `json:"magnet,omitempty"`
	// Trackers are the .torrent's tiers (a magnet's are in Magnet).
	Trackers [][]string `json:"trackers,omitempty"`
	Name     string     `json:"name"`
	Dir      string     `json:"dir"`
	Paused   bool       `json:"paused"`
	AddedAt  time.Time  `json:"added_at"`
	// SeedRatio is when seeding stops; 0: never.
	SeedRatio float64 `json:"seed_ratio"`
	// Uploaded and Downloaded are the totals of the sessions before this
	// one.
	Uploaded   int64 `json:"uploaded"`
	Downloaded int64 `json:"downloaded"`
	// Complete: every piece was verified when last seen; Done: the seed
	// ratio was reached, and it stopped.
	Complete bool `json:"complete"`
	Done     bool `json:"done"`
}

type stateFile struct {
	Version  int      `json:"version"`
	Torrents []record `json:"torrents"`
}

// decodeState parses the torrents file, refusing what no daemon wrote.
func decodeState(b []byte) ([]record, error) {
	var sf stateFile
	if err := json.Unmarshal(b, &sf); err != nil {
		return nil, err
	}
	if sf.Version != stateVersion {
		return nil, fmt.Errorf("version %d, want %d", sf.Version, stateVersion)
	}
	if len(sf.Torrents) > MaxTorrents {
		return nil, fmt.Errorf("%d torrents, at most %d", len(sf.Torrents), MaxTorrents)
	}
	seen := make(map[string]bool)
	for i, r := range sf.Torrents {
		ih, err := hex.DecodeString(r.InfoHash)
		if err != nil || len(ih) != metadata.HashLen || hex.EncodeToString(ih) != r.InfoHash {
			return nil, fmt.Errorf("torrent %d: bad info-hash %q", i, r.InfoHash)
		}
		if seen[r.InfoHash] {
			return nil, fmt.Errorf("torrent %d: %s twice", i, r.InfoHash)
		}
		seen[r.InfoHash] = true
		if !filepath.IsAbs(r.Dir) || filepath.Clean(r.Dir) != r.Dir {
			return nil, fmt.Errorf("torrent %s: directory %q is not absolute and clean", r.InfoHash, r.Dir)
		}
		if r.SeedRatio < 0 || math.IsNaN(r.SeedRatio) || math.IsInf(r.SeedRatio, 0) || r.Uploaded < 0 || r.Downloaded < 0 {
			return nil, fmt.Errorf("torrent %s: bad figures", r.InfoHash)
		}
	}
	return sf.Torrents, nil
}

// readBounded reads at most max bytes of path.
func readBounded(path string, max int64) ([]byte, error) { return atomicfile.ReadFile(path, max) }

// WriteFileAtomic replaces path with b so that a crash leaves the old file or
// the new one, whole.
func WriteFileAtomic(path string, b []byte, perm os.FileMode) error {
	return atomicfile.WriteFile(path, b, perm)
}
