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
	idx := make([]int, 0, len(files))
	for i := range files {
		if !files[i].Padding {
			idx = append(idx, i)
		}
	}
	slices.SortFunc(idx, func(a, b int) int {
		return slices.Compare(files[a].Path, files[b].Path)
	})
	for k := 1; k < len(idx); k++ {
		prev, cur := files[idx[k-1]].Path, files[idx[k]].Path
		if len(prev) > len(cur) || !slices.Equal(prev, cur[:len(prev)]) {
			continue
		}
		if len(prev) == len(cur) {
			return fmt.Errorf("duplicate file path %q", strings.Join(cur, "/"))
		}
		return fmt.Errorf("file %q is also the directory of %q",
			strings.Join(prev, "/"), strings.Join(cur, "/"))
	}
	return nil
}
