package storage

import (
	"cmp"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"node/metadata"
)

// ErrNotClaimed is wrapped for each file RemoveFiles leaves because the
// torrent never claimed it: there is no resume record of the torrent in
// the directory, so the file may be anyone's that has the name (Recover
// refused it as ErrForeignData, or the torrent never wrote).
var ErrNotClaimed = errors.New("not known to be the torrent's (no resume record of it), left alone")

// maxLeftReported bounds how many of the paths it leaves RemoveFiles names
// in its error; the rest are counted. A torrent may have many files.
const maxLeftReported = 10

// RemoveFiles deletes a torrent's files under dir, its resume record, and
// then the directories of its paths that are left empty.
//
// It deletes only files that are the torrent's by the rules of Open and
// Recover: with a resume record of this torrent in dir (whole, of this
// info-hash and layout), every file at the torrent's paths is the
// torrent's, since the record is written only once no file is someone
// else's (the torrent created it, found it empty or holding its verified
// pieces, or was given it by SetOverwrite). Without one it deletes none of
// the data and names what it left (ErrNotClaimed).
//
// It reaches every path one directory at a time from dir, through real
// directories held open, never through a symlink, and deletes a file by
// its name in the directory it holds (os.Root): a directory swapped for a
// symlink while it works cannot turn a removal on a file elsewhere. A path
// a component of which is a symlink, or that is not a regular file, is
// left alone. Directories that are not empty stay. It returns the paths it
// left and why, after doing all it could.
func RemoveFiles(dir string, info *metadata.Info) error {
	if info == nil {
		return errors.New("remove files: nil info")
	}
	absDir, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	root, err := os.OpenRoot(absDir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("remove files: %w", err)
	}
	defer root.Close()
	r := &remover{root: root, dir: absDir}

	s := &Storage{dir: absDir, info: info}
	rec := []string{resumeDirName, hex.EncodeToString(info.InfoHash[:]) + ".resume"}
	claimed, err := r.record(s, rec)
	if err != nil {
		r.leave(fmt.Errorf("%s: %w; none of the data deleted", filepath.Join(absDir, filepath.Join(rec...)), err))
	}
	dirs := make(map[string][]string)
	for _, f := range info.Files {
		if f.Padding {
			continue
		}
		p, err := safeJoin(absDir, f.Path)
		if err != nil {
			r.leave(err)
			continue
		}
		if !claimed {
			if _, err := r.lstat(f.Path); err == nil {
				r.leave(fmt.Errorf("%s: %w", p, ErrNotClaimed))
			} else if !errors.Is(err, fs.ErrNotExist) {
				r.leave(err)
			}
			continue
		}
		r.removeFile(f.Path)
		for i := 1; i < len(f.Path); i++ {
			dirs[strings.Join(f.Path[:i], "/")] = f.Path[:i]
		}
	}
	if claimed {
		r.removeFile(rec)
		dirs[resumeDirName] = rec[:1]
	}
	// Deepest first, so that a parent is empty once its children are gone;
	// a directory that is not empty is someone's, and stays.
	order := make([][]string, 0, len(dirs))
	for _, d := range dirs {
		order = append(order, d)
	}
	slices.SortFunc(order, func(a, b []string) int {
		return cmp.Or(-cmp.Compare(len(a), len(b)), slices.Compare(a, b))
	})
	for _, d := range order {
		r.removeEmptyDir(d)
	}
	return r.err()
}

// remover deletes below root and collects what it left.
type remover struct {
	root *os.Root
	dir  string // root's path, for messages
	left []error
	more int
}

func (r *remover) leave(err error) {
	if len(r.left) < maxLeftReported {
		r.left = append(r.left, err)
		return
	}
	r.more++
}

func (r *remover) err() error {
	err := errors.Join(r.left...)
	if r.more > 0 {
		err = fmt.Errorf("%w\nand %d more left", err, r.more)
	}
	return err
}

func (r *remover) path(comps []string) string {
	return filepath.Join(r.dir, filepath.Join(comps...))
}

// record reports whether the resume record at rel is a whole one of s's
// torrent; a missing record is no error.
func (r *remover) record(s *Storage, rel []string) (bool, error) {
	parent, done, err := r.parent(rel)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return false, nil
		}
		return false, err
	}
	defer done()
	name := rel[len(rel)-1]
	fi, err := parent.Lstat(name)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if !fi.Mode().IsRegular() {
		return false, errors.New("not a regular file")
	}
	f, err := parent.OpenFile(name, os.O_RDONLY|oNoFollow|oNonBlock, 0)
	if err != nil {
		return false, err
	}
	defer f.Close()
	if _, err := s.readResume(f); err != nil {
		return false, err
	}
	return true, nil
}

// parent opens the directory that holds the last of comps, walking down
// from the root one real directory at a time. done closes it.
func (r *remover) parent(comps []string) (*os.Root, func(), error) {
	cur, done := r.root, func() {}
	for i, c := range comps[:len(comps)-1] {
		p := r.path(comps[:i+1])
		fi, err := cur.Lstat(c)
		if err != nil {
			err = pathErr("remove", p, err)
		} else if !fi.IsDir() {
			if fi.Mode()&fs.ModeSymlink != 0 {
				err = fmt.Errorf("%w: %s is a symlink, left alone", metadata.ErrUnsafePath, p)
			} else {
				// Nothing of the torrent's can be below a file.
				err = fmt.Errorf("%s: not a directory: %w", p, fs.ErrNotExist)
			}
		}
		var next *os.Root
		if err == nil {
			if next, err = cur.OpenRoot(c); err != nil {
				err = pathErr("remove", p, err)
			}
		}
		if err == nil {
			// OpenRoot follows a symlink that stays inside cur: if c
			// became one since Lstat, what it opened is not the
			// directory looked at, and we go no further.
			var st fs.FileInfo
			st, err = next.Stat(".")
			if err != nil {
				err = pathErr("remove", p, err)
			} else if !os.SameFile(fi, st) {
				err = fmt.Errorf("%w: %s changed while being removed, left alone", metadata.ErrUnsafePath, p)
			}
			if err != nil {
				next.Close()
			}
		}
		done()
		if err != nil {
			return nil, nil, err
		}
		cur, done = next, func() { next.Close() }
	}
	return cur, done, nil
}

// lstat is Lstat of comps reached as parent reaches it.
func (r *remover) lstat(comps []string) (fs.FileInfo, error) {
	parent, done, err := r.parent(comps)
	if err != nil {
		return nil, err
	}
	defer done()
	return parent.Lstat(comps[len(comps)-1])
}

// removeFile deletes the regular file at comps, if there is one.
func (r *remover) removeFile(comps []string) {
	parent, done, err := r.parent(comps)
	if errors.Is(err, fs.ErrNotExist) {
		return
	}
	if err != nil {
		r.leave(err)
		return
	}
	defer done()
	name := comps[len(comps)-1]
	fi, err := parent.Lstat(name)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		r.leave(pathErr("remove", r.path(comps), err))
	case fi.Mode()&fs.ModeSymlink != 0:
		r.leave(fmt.Errorf("%w: %s is a symlink, left alone", metadata.ErrUnsafePath, r.path(comps)))
	case !fi.Mode().IsRegular():
		r.leave(fmt.Errorf("%s: not a regular file, left alone", r.path(comps)))
	default:
		// Unlinked by name in the directory held open: if the name
		// became a symlink since Lstat, the link goes, not its target.
		if err := parent.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
			r.leave(pathErr("remove", r.path(comps), err))
		}
	}
}

// removeEmptyDir deletes the directory at comps if it is empty.
func (r *remover) removeEmptyDir(comps []string) {
	parent, done, err := r.parent(comps)
	if err != nil {
		return // reported with the files below it, if it matters
	}
	defer done()
	name := comps[len(comps)-1]
	if fi, err := parent.Lstat(name); err == nil && fi.IsDir() {
		_ = parent.Remove(name) // fails, harmlessly, when not empty
	}
}
