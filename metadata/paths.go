package metadata

import (
	"fmt"
	"slices"
	"strings"
)

// checkComponent refuses a path component that could make a file land
// outside the download directory, or in a different place on another
// operating system: storage joins components with the local separator, so
// each must be a plain name everywhere.
func checkComponent(c string) error {
	switch {
	case c == "":
		return fmt.Errorf("%w: empty path component", ErrUnsafePath)
	case c == "." || c == "..":
		return fmt.Errorf("%w: path component %q", ErrUnsafePath, c)
	case strings.ContainsAny(c, "/\\\x00"):
		return fmt.Errorf("%w: path component %q contains a separator or NUL", ErrUnsafePath, c)
	}
	return nil
}

// sanitizeComponent replaces the control characters of a path component
// (0x01-0x1f and 0x7f) with '_', as libtorrent does: file names holding
// escape sequences, newlines or tabs are legal on Unix but a trap in every
// terminal and script that lists them, and refused outright on Windows.
// NUL is left for checkComponent to refuse: no system takes it in a name.
// Bytes below 0x80 are never part of a multi-byte UTF-8 sequence, so the
// rest of the name is untouched.
func sanitizeComponent(c string) string {
	for i := 0; i < len(c); i++ {
		if isControl(c[i]) {
			b := []byte(c)
			for j := i; j < len(b); j++ {
				if isControl(b[j]) {
					b[j] = '_'
				}
			}
			return string(b)
		}
	}
	return c
}

func isControl(b byte) bool { return b != 0 && b < 0x20 || b == 0x7f }

// checkPath checks every component of a file's path (name included) and
// the joined length.
func checkPath(path []string) error {
	if len(path) == 0 {
		return fmt.Errorf("%w: empty path", ErrUnsafePath)
	}
	n := len(path) - 1 // separators
	for _, c := range path {
		if err := checkComponent(c); err != nil {
			return err
		}
		n += len(c)
		if n > MaxPathLen {
			return fmt.Errorf("path longer than %d bytes", MaxPathLen)
		}
	}
	return nil
}

// checkLayout refuses two files at the same path, and a file at a path that
// another file needs as a directory: either would make storage overwrite one
// file with another. Padding files are never written, so they may repeat
// (BEP 47 names them ".pad/N" by size).
//
// Sorting component-wise puts every path right before the paths it is a
// prefix of, so comparing neighbours is enough and memory stays linear.
func checkLayout(files []File) error {
	// Each path joined with NUL, which no component holds (checkPath):
	// NUL sorts below every other byte, so the joined strings sort as the
	// paths do component by component, and a path is a directory of
	// another exactly when its key and a NUL begin the other's. One
	// comparison is then one memcmp, however many components two paths
	// share; compared component by component, thousands of paths with a
	// long common prefix cost seconds.
	keys := make([]string, 0, len(files))
	idx := make([]int, 0, len(files))
	for i := range files {
		if !files[i].Padding {
			keys = append(keys, strings.Join(files[i].Path, "\x00"))
			idx = append(idx, i)
		}
	}
	order := make([]int, len(keys))
	for k := range order {
		order[k] = k
	}
	slices.SortFunc(order, func(a, b int) int { return strings.Compare(keys[a], keys[b]) })
	for k := 1; k < len(order); k++ {
		prev, cur := keys[order[k-1]], keys[order[k]]
		if prev == cur {
			return fmt.Errorf("duplicate file path %q", strings.Join(files[idx[order[k]]].Path, "/"))
		}
		if strings.HasPrefix(cur, prev) && cur[len(prev)] == 0 {
			return fmt.Errorf("file %q is also the directory of %q",
				strings.Join(files[idx[order[k-1]]].Path, "/"), strings.Join(files[idx[order[k]]].Path, "/"))
		}
	}
	return nil
}
