package dht

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/anacrolix/torrent/bencode"

	"node/krpc"
	"node/routing"
	"node/storage/atomicfile"
)

// lockFile, in the state directory, is held (flock) by the process that
// uses the directory, for as long as its node runs.
const lockFile = "lock"

// errStateInUse is what a second process sharing a state directory gets:
// two processes saving one file would each overwrite the other's table,
// and two nodes loading one ID would be one node twice in others' tables.
var errStateInUse = errors.New("in use by another process")

const (
	stateFile    = "dht.dat"
	saveInterval = 5 * time.Minute
	// maxStateSize bounds what we read back: a full table is under 50 KiB.
	maxStateSize = 1 << 20
)

// savedState is the file format: our ID and the table's nodes in compact
// form, bencoded; each family's nodes in its own key. A dual-stack node
// saves both tables, and the IPv6 one's ID as id6 when BEP 42 made it
// differ. A file of one family (any file from before dual-stack) loads
// into either: each socket takes the nodes of its family.
type savedState struct {
	ID     routing.ID  `bencode:"id"`
	ID6    routing.ID  `bencode:"id6,omitempty"`
	Nodes  krpc.Nodes  `bencode:"nodes,omitempty"`
	Nodes6 krpc.Nodes6 `bencode:"nodes6,omitempty"`
}

func (s *savedState) contacts() []routing.Contact {
	return append(append([]routing.Contact(nil), s.Nodes...), s.Nodes6...)
}

// Save writes the routing tables to StateDir.
func (n *Node) Save() error {
	if n.cfg.StateDir == "" {
		return errors.New("dht: no state directory")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	es, err := n.entries(ctx)
	if err != nil {
		return err
	}
	return saveState(n.cfg.StateDir, n.stateOf(es, n.cfg.Now()))
}

// stateOf is what the first Node of a pair (or the only one) saves: its
// ID and es, its table's entries, and the IPv6 Node's ID and nodes as its
// published view has them. Bad nodes are not worth a restart's time and
// are left out (the view holds none).
func (n *Node) stateOf(es []routing.Entry, now time.Time) *savedState {
	st := newSavedState(n.ID(), es, now)
	h := n.v6.Load()
	// A node without one family keeps what it loaded of that family, ID
	// and nodes, for the next run with both.
	switch {
	case n.saved == nil:
	case n.v6only:
		if !n.saved.ID.IsZero() && n.saved.ID != st.ID {
			st.ID, st.ID6 = n.saved.ID, st.ID
		}
		st.Nodes = append(st.Nodes, n.saved.Nodes...)
	case n.is4 && h == nil:
		id6 := n.saved.ID6
		if id6.IsZero() {
			id6 = n.saved.ID // both families had the same one
		}
		if id6 != st.ID {
			st.ID6 = id6
		}
		st.Nodes6 = append(st.Nodes6, n.saved.Nodes6...)
	}
	if h != nil {
		if id := h.ID(); id != st.ID {
			st.ID6 = id
		}
		for _, c := range h.view.Load().nodes {
			st.add(c)
		}
	}
	return st
}

// newSavedState is the state of one table, es, as of now.
func newSavedState(self routing.ID, es []routing.Entry, now time.Time) *savedState {
	st := &savedState{ID: self}
	for _, e := range es {
		if e.State(now, 0) != routing.Bad {
			st.add(e.Contact)
		}
	}
	return st
}

func (st *savedState) add(c routing.Contact) {
	if familyOf(c.Addr.Addr()) == fam4 {
		st.Nodes = append(st.Nodes, c)
	} else {
		st.Nodes6 = append(st.Nodes6, c)
	}
}

// saveState writes atomically, so a crash leaves either the old file or
// the new one, never a torn one.
func saveState(dir string, st *savedState) error {
	b, err := bencode.Marshal(st)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return atomicfile.WriteFile(filepath.Join(dir, stateFile), b, 0o600)
}

// loadState reads the saved state; a missing file is not an error.
func loadState(dir string) (*savedState, error) {
	if dir == "" {
		return nil, nil
	}
	b, err := atomicfile.ReadFile(filepath.Join(dir, stateFile), maxStateSize)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return decodeState(b)
}

// EncodeState is the saved state of a node with ID id whose routing table
// holds nodes, in the state file's format: for Config.WarmState.
func EncodeState(id routing.ID, nodes []routing.Contact) ([]byte, error) {
	st := &savedState{ID: id}
	for _, c := range nodes {
		st.add(c)
	}
	return bencode.Marshal(st)
}

// decodeState parses a state file's bytes.
func decodeState(b []byte) (*savedState, error) {
	if len(b) > maxStateSize {
		return nil, fmt.Errorf("%s: %d bytes is too large", stateFile, len(b))
	}
	var st savedState
	if err := bencode.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("%s: %w", stateFile, err)
	}
	return &st, nil
}
