// Package atomicfile replaces files so that a reader, and the file system after a crash or a
// power cut, sees either the old or the new content, never a part: the data goes into a
// temporary file in the same directory, which is synced, renamed over the target, and the
// directory synced after the rename. Every file the agent keeps on the host goes through it
// (rule files, state files, authorized_keys, kubeconfigs and tokens, its own binary).
//
// The temporary file's name starts with a dot, so that globs such as nftables'
// `include "/etc/nftables/*"` never pick up a half-written file.
package atomicfile

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"syscall"
)

// Option changes how WriteFile writes.
type Option func(*options)

type options struct {
	uid, gid   int
	parentMode os.FileMode
}

// Owner gives the new file to uid and gid (-1 keeps the writer's).
func Owner(uid, gid int) Option { return func(o *options) { o.uid, o.gid = uid, gid } }

// Parents creates missing parent directories with mode (before the umask).
func Parents(mode os.FileMode) Option { return func(o *options) { o.parentMode = mode } }

// WriteFile replaces path with data, mode perm (exactly: the umask does not apply).
func WriteFile(path string, data []byte, perm os.FileMode, opts ...Option) error {
	o := options{uid: -1, gid: -1}
	for _, opt := range opts {
		opt(&o)
	}
	if o.parentMode != 0 {
		if err := os.MkdirAll(filepath.Dir(path), o.parentMode); err != nil {
			return err
		}
	}
	f, err := Create(path, perm)
	if err != nil {
		return err
	}
	defer f.Abort()
	if _, err := f.Write(data); err != nil {
		return err
	}
	if o.uid >= 0 || o.gid >= 0 {
		if err := f.Chown(o.uid, o.gid); err != nil {
			return err
		}
	}
	return f.Commit()
}

// WriteFileIfChanged is WriteFile unless path already holds data; changed tells whether it
// wrote. Mode and owner of an unchanged file are left as they are.
func WriteFileIfChanged(path string, data []byte, perm os.FileMode, opts ...Option) (changed bool, err error) {
	if current, err := os.ReadFile(path); err == nil && bytes.Equal(current, data) {
		return false, nil
	}
	if err := WriteFile(path, data, perm, opts...); err != nil {
		return false, err
	}
	return true, nil
}

// File is a replacement of Path being written. Write to it, then Commit; Abort (deferred)
// throws it away unless it was committed.
type File struct {
	*os.File
	// Path is the file Commit replaces.
	Path   string
	closed bool
	done   bool
}

// Create starts a replacement of path with mode perm. Its content is in TempName until Commit.
func Create(path string, perm os.FileMode) (*File, error) {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return nil, err
	}
	// CreateTemp makes 0600; Chmod gives exactly perm, whatever the umask.
	if err := tmp.Chmod(perm); err != nil {
		tmp.Close()
		os.Remove(tmp.Name())
		return nil, err
	}
	return &File{File: tmp, Path: path}, nil
}

// TempName is the temporary file, complete after Finish (to run or check it before Commit).
func (f *File) TempName() string { return f.File.Name() }

// Finish syncs and closes the temporary file; Commit calls it when it was not called.
func (f *File) Finish() error {
	if f.closed {
		return nil
	}
	f.closed = true
	if err := ops.syncFile(f.File); err != nil {
		f.File.Close()
		return err
	}
	return f.File.Close()
}

// Commit renames the finished file over Path and syncs the directory, so that the rename
// survives a crash.
func (f *File) Commit() error {
	if err := f.Finish(); err != nil {
		return err
	}
	if err := ops.rename(f.TempName(), f.Path); err != nil {
		return err
	}
	f.done = true
	return SyncDir(filepath.Dir(f.Path))
}

// Abort removes the temporary file unless Commit renamed it; it is safe to call always.
func (f *File) Abort() {
	if f.done {
		return
	}
	if !f.closed {
		f.closed = true
		f.File.Close()
	}
	os.Remove(f.TempName())
	f.done = true
}

// SyncDir makes the entries of dir (a rename, a new file) durable. File systems that cannot
// sync a directory (EINVAL) are left as they are.
func SyncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := ops.syncDir(d); err != nil && !errors.Is(err, syscall.EINVAL) {
		return err
	}
	return nil
}

// ops are the steps whose order the tests check.
var ops = struct {
	syncFile func(*os.File) error
	syncDir  func(*os.File) error
	rename   func(oldpath, newpath string) error
}{
	syncFile: (*os.File).Sync,
	syncDir:  (*os.File).Sync,
	rename:   os.Rename,
}
