//go:build !unix

package testutil

import "testing"

// RaiseNoFile does nothing where there is no open-file limit to raise.
func RaiseNoFile(testing.TB, uint64) {}
