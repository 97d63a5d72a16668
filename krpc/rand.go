package krpc

import (
	crand "crypto/rand"
	"math/rand/v2"
)

// newTxIDSource returns a generator of transaction IDs for one Transport:
// ChaCha8, a cryptographic generator, seeded from the system's, so that
// the IDs can be predicted neither from those a node has seen nor across
// restarts (a restarted node does not reuse the IDs whose late answers may
// still arrive). It is not safe for concurrent use; the Transport calls it
// under its lock.
func newTxIDSource() func() uint32 {
	var seed [32]byte
	_, _ = crand.Read(seed[:]) // never fails on supported systems
	r := rand.NewChaCha8(seed)
	return func() uint32 { return uint32(r.Uint64()) }
}
