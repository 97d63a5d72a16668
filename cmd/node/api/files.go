package api

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/netip"
	"os"
	"path/filepath"
	"strings"

	"node/storage/atomicfile"
)

// The files a daemon leaves in its state directory for the commands that
// talk to it.
const (
	// TokenFile holds the API token: TokenBytes random bytes in hex,
	// readable by its owner only.
	TokenFile = "api-token"
	// AddrFile holds the address the API listens on.
	AddrFile = "api-addr"
	// TokenBytes is the token's entropy.
	TokenBytes = 32
	// maxSmallFile bounds what is read of either file: both hold one line.
	maxSmallFile = 1 << 10
)

// LoadOrCreateToken returns the token in stateDir's TokenFile, creating
// the file (mode 0600) with a new random token if there is none. Two
// processes racing to create it end up with the same token: the file
// appears whole, once, and the loser reads the winner's.
func LoadOrCreateToken(stateDir string) (string, error) {
	if stateDir == "" {
		return "", errors.New("API token: no state directory")
	}
	path := filepath.Join(stateDir, TokenFile)
	tok, err := ReadToken(path)
	if !errors.Is(err, fs.ErrNotExist) {
		return tok, err
	}
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return "", fmt.Errorf("API token: %w", err)
	}
	b := make([]byte, TokenBytes)
	_, _ = rand.Read(b) // never fails (crypto/rand panics instead)
	tok = hex.EncodeToString(b)
	tmp, err := atomicfile.Temp(stateDir, TokenFile, 0o600, func(w io.Writer) error {
		_, err := io.WriteString(w, tok+"\n")
		return err
	})
	if err != nil {
		return "", fmt.Errorf("API token: %w", err)
	}
	defer os.Remove(tmp)
	// A link, unlike a rename, fails when the name exists: the first
	// process to get here creates the token, every other one reads it.
	if err := os.Link(tmp, path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return ReadToken(path)
		}
		return "", fmt.Errorf("API token: %w", err)
	}
	if err := atomicfile.SyncDir(stateDir); err != nil {
		return "", fmt.Errorf("API token: %w", err)
	}
	return tok, nil
}

// ReadToken reads a token file: a regular file that only its owner may
// read or write, holding 2*TokenBytes hex digits and perhaps a newline.
// A token others can read is refused rather than used: whoever read it
// could already have used it.
func ReadToken(path string) (string, error) {
	b, err := readSmall(path, 0o077, "lets others read or change the API token: run chmod 600 on it, or remove it so that node daemon makes a new one")
	if err != nil {
		return "", err
	}
	tok := strings.TrimSuffix(string(b), "\n")
	if _, err := hex.DecodeString(tok); err != nil || len(tok) != 2*TokenBytes {
		return "", fmt.Errorf("%s: not an API token: want %d hex digits; remove it so that node daemon makes a new one", path, 2*TokenBytes)
	}
	return tok, nil
}

// WriteAddr records in stateDir's AddrFile the address the API listens on,
// replacing any older one whole. An unspecified IP (0.0.0.0, [::]) is
// recorded as the loopback of its family: the address the commands
// connect to is also their Host header, which must be a loopback IP.
func WriteAddr(stateDir, addr string) error {
	if _, err := netip.ParseAddrPort(addr); err != nil {
		return fmt.Errorf("API address: %w", err)
	}
	addr = loopbackFor(addr)
	if err := atomicfile.WriteFile(filepath.Join(stateDir, AddrFile), []byte(addr+"\n"), 0o644); err != nil {
		return fmt.Errorf("API address: %w", err)
	}
	return nil
}

// ReadAddr is the address in stateDir's AddrFile; an error satisfying
// errors.Is(err, fs.ErrNotExist) when there is none. A file others may
// write, or that another user owns, is refused: whoever wrote it would
// choose where the token goes. (Root reads any user's: a service's state
// directory belongs to the service's user.)
func ReadAddr(stateDir string) (string, error) {
	path := filepath.Join(stateDir, AddrFile)
	b, err := readSmall(path, 0o022, "lets others change where the API token is sent: run chmod 644 on it")
	if err != nil {
		return "", err
	}
	if fi, err := os.Stat(path); err != nil {
		return "", err
	} else if uid, ok := fileOwner(fi); ok && !addrOwnerOK(uid, uint32(os.Getuid())) {
		return "", fmt.Errorf("%s: owned by uid %d, not by you: its owner chooses where the API token is sent; remove it if no daemon of yours runs", path, uid)
	}
	addr := strings.TrimSpace(string(b))
	if _, err := netip.ParseAddrPort(addr); err != nil {
		return "", fmt.Errorf("%s: not an address: %w", filepath.Join(stateDir, AddrFile), err)
	}
	return addr, nil
}

// RemoveAddr removes stateDir's AddrFile if it still names addr: a daemon
// that stops says it no longer listens, without removing the address of
// one started after it.
func RemoveAddr(stateDir, addr string) error {
	addr = loopbackFor(addr)
	if cur, err := ReadAddr(stateDir); err != nil || cur != addr {
		return nil
	}
	err := os.Remove(filepath.Join(stateDir, AddrFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	return err
}

// addrOwnerOK reports whether a user me may take the address in an
// AddrFile that owner owns.
func addrOwnerOK(owner, me uint32) bool {
	return owner == me || owner == 0 || me == 0
}

// loopbackFor is addr with an unspecified IP (0.0.0.0, [::]) replaced by
// the loopback of its family, where a listener there is reached.
func loopbackFor(addr string) string {
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return addr
	}
	ip := ap.Addr().Unmap()
	switch {
	case !ip.IsUnspecified():
		return addr
	case ip.Is4():
		ip = netip.AddrFrom4([4]byte{127, 0, 0, 1})
	default:
		ip = netip.IPv6Loopback()
	}
	return netip.AddrPortFrom(ip, ap.Port()).String()
}

// readSmall reads a regular file of at most maxSmallFile bytes, and
// refuses one whose mode has any of the bits refuse: the error says the
// mode and then why.
func readSmall(path string, refuse fs.FileMode, why string) ([]byte, error) {
	fi, err := os.Lstat(path)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s: not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&refuse != 0 {
		return nil, fmt.Errorf("%s: mode %04o %s", path, perm, why)
	}
	return atomicfile.ReadFile(path, maxSmallFile)
}
