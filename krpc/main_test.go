package krpc

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain fails the package if any test leaves a goroutine behind, such as
// a Transport's reader that was never closed.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
