//go:build !unix

package dht

import "os"

// lockState makes dir; without flock there is no lock here, and two
// processes sharing a state directory each save over the other's file.
func lockState(dir string) (*os.File, error) {
	return nil, os.MkdirAll(dir, 0o755)
}
