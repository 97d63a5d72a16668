//go:build !linux

// Command floorbench is Linux only (direct I/O and fallocate).
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "floorbench: Linux only")
	os.Exit(1)
}
