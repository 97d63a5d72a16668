package web_test

import (
	"testing"

	"go.uber.org/goleak"
)

// TestMain checks that the browser test stops what it started: chromedp's
// readers, the trap, the API server.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
