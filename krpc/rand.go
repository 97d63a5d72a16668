package krpc

import "crypto/rand"

// randRead seeds transaction IDs so that a restarted node does not reuse
// the IDs of its previous run, whose late answers may still arrive.
func randRead(b []byte) (int, error) { return rand.Read(b) }
