//go:build !unix

package storage

// oNoFollow: no such flag here; Lstat before opening still catches links
// that exist at that moment.
const oNoFollow = 0

// oNonBlock: no FIFOs to block on here.
const oNonBlock = 0
