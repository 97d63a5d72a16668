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
