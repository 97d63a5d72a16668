package storage

import (
	"cmp"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"node/metadata"
)

// RemoveFiles deletes a torrent's files under dir, its resume record, and
// then the directories of its paths that are left empty. It deletes only
// regular files at the torrent's own paths (checked as Open checks them)
// reached through real directories: a path of which any component is a
// symlink, or which is not a regular file, is left alone, so that a link
// planted in the directory cannot turn a removal on another file.
// Directories that are not empty stay. It returns the paths it left and
// why, joined, after doing all it could.
func RemoveFiles(dir string, info *metadata.Info) error {
	if info == nil {
		return errors.New("remove files: nil info")
	}
	absDir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	var errs []error
	dirs := make(map[string]bool)
	for _, f := range info.Files {
		if f.Padding {
			continue
		}
		p, err := safeJoin(absDir, f.Path)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if err := realPath(absDir, p); err != nil {
			errs = append(errs, err)
			continue
		}
		fi, err := os.Lstat(p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			errs = append(errs, err)
		case !fi.Mode().IsRegular():
			errs = append(errs, fmt.Errorf("%s: not a regular file, left alone", p))
		default:
			if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, err)
			}
		}
		for d := filepath.Dir(p); strictlyInside(absDir, d); d = filepath.Dir(d) {
			dirs[d] = true
		}
	}
	s := &Storage{dir: absDir, info: info}
	rp := s.resumePath()
	if err := realPath(absDir, rp); err == nil {
		if fi, err := os.Lstat(rp); err == nil && fi.Mode().IsRegular() {
			if err := os.Remove(rp); err != nil {
				errs = append(errs, err)
			}
		}
		dirs[filepath.Dir(rp)] = true
	}
	// Deepest first, so that a parent is empty once its children are gone;
	// a directory that is not empty is someone's, and stays.
	order := make([]string, 0, len(dirs))
	for d := range dirs {
		order = append(order, d)
	}
	slices.SortFunc(order, func(a, b string) int {
		return cmp.Or(-cmp.Compare(strings.Count(a, string(filepath.Separator)), strings.Count(b, string(filepath.Separator))), strings.Compare(a, b))
	})
	for _, d := range order {
		if realPath(absDir, d) != nil {
			continue
		}
		if fi, err := os.Lstat(d); err == nil && fi.IsDir() {
			_ = os.Remove(d) // fails, harmlessly, when not empty
		}
	}
	return errors.Join(errs...)
}

// realPath reports an error if a component of p below dir, p included,
// is a symlink.
func realPath(dir, p string) error {
	rel, err := filepath.Rel(dir, p)
	if err != nil || !strictlyInside(dir, p) {
		return fmt.Errorf("%w: %s is outside %s", metadata.ErrUnsafePath, p, dir)
	}
	cur := dir
	for _, c := range strings.Split(rel, string(filepath.Separator)) {
		cur = filepath.Join(cur, c)
		fi, err := os.Lstat(cur)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if fi.Mode()&fs.ModeSymlink != 0 {
			return fmt.Errorf("%w: %s is a symlink, left alone", metadata.ErrUnsafePath, cur)
		}
	}
	return nil
}
