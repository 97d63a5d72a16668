package utp

import "testing"

func TestLogger(t *testing.T) {
	Logger.Printf("hello!")
}
