package storage

// MarkComplete records that piece p is complete. The caller verifies the
// piece (it hashes blocks as they arrive), so no re-read happens here. Out of
// range indexes are ignored.
func (s *Storage) MarkComplete(p int) {
	if p < 0 || p >= s.info.NumPieces() {
		return
	}
	s.cmu.Lock()
	defer s.cmu.Unlock()
	s.markLocked(p)
}

func (s *Storage) markLocked(p int) {
	mask := byte(0x80) >> (p % 8)
	if s.have[p/8]&mask != 0 {
		return
	}
	s.have[p/8] |= mask
	s.numComplete++
	s.bytesComplete += s.info.PieceSize(p)
}

// Complete reports whether piece p is complete.
func (s *Storage) Complete(p int) bool {
	if p < 0 || p >= s.info.NumPieces() {
		return false
	}
	s.cmu.Lock()
	defer s.cmu.Unlock()
	return s.have[p/8]&(0x80>>(p%8)) != 0
}

// Have returns a copy of the completion bitfield in BEP 3 layout: the high
// bit of byte 0 is piece 0, spare bits at the end are zero.
func (s *Storage) Have() []byte {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	return append([]byte(nil), s.have...)
}

// NumComplete is the number of complete pieces.
func (s *Storage) NumComplete() int {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	return s.numComplete
}

// BytesComplete is the total size of the complete pieces.
func (s *Storage) BytesComplete() int64 {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	return s.bytesComplete
}

// resetCompletion forgets all pieces; Recover starts from nothing so a stale
// in-memory state cannot leak into its answer.
func (s *Storage) resetCompletion() {
	s.cmu.Lock()
	defer s.cmu.Unlock()
	clear(s.have)
	s.numComplete = 0
	s.bytesComplete = 0
}
