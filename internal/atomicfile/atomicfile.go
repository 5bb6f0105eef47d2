// Package atomicfile writes files so that a reader never sees a half-written one:
// data goes to a temporary file in the same folder, is synced, and is renamed over
// the destination only when complete. An interrupted or failed write leaves the
// destination untouched and removes the temporary file.
package atomicfile

import (
	"bufio"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// File is an in-progress atomic write. Write to it (it is buffered), then call
// Commit to publish it under its final name, or Abort to discard it. Abort after
// Commit is a no-op, so `defer f.Abort()` is the usual pattern.
type File struct {
	path string
	tmp  *os.File
	w    *bufio.Writer
	done bool
}

// Create starts an atomic write of path. The parent folder must exist.
func Create(path string) (*File, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	tmp, err := os.CreateTemp(dir, "."+base+".tmp-*")
	if err != nil {
		return nil, fmt.Errorf("create %s: %w", path, err)
	}
	return &File{path: path, tmp: tmp, w: bufio.NewWriterSize(tmp, 1<<20)}, nil
}

// Write implements io.Writer.
func (f *File) Write(p []byte) (int, error) {
	n, err := f.w.Write(p)
	if err != nil {
		return n, fmt.Errorf("write %s: %w", f.path, err)
	}
	return n, nil
}

// Name returns the final path of the file.
func (f *File) Name() string { return f.path }

// Mode is the permission of a published file: what os.Create gives under the
// usual umask 022 (os.CreateTemp alone would leave it private, 0600).
const Mode os.FileMode = 0o644

// Commit flushes, syncs and renames the temporary file to its final name.
func (f *File) Commit() error {
	if f.done {
		return fmt.Errorf("commit %s: already committed or aborted", f.path)
	}
	f.done = true
	err := f.w.Flush()
	if err == nil {
		err = f.tmp.Chmod(Mode)
	}
	if err == nil {
		err = f.tmp.Sync()
	}
	if cerr := f.tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.tmp.Name(), f.path)
	}
	if err != nil {
		os.Remove(f.tmp.Name())
		return fmt.Errorf("write %s: %w", f.path, err)
	}
	return nil
}

// Abort discards the temporary file. It is safe to call more than once and after Commit.
func (f *File) Abort() {
	if f.done {
		return
	}
	f.done = true
	f.tmp.Close()
	os.Remove(f.tmp.Name())
}

// WriteFile writes data to path atomically.
func WriteFile(path string, data []byte) error {
	return WriteWith(path, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// WriteWith calls fill with a writer for path and publishes the file only if fill
// returns nil.
func WriteWith(path string, fill func(w io.Writer) error) error {
	f, err := Create(path)
	if err != nil {
		return err
	}
	defer f.Abort()
	if err := fill(f); err != nil {
		return err
	}
	return f.Commit()
}

// RemoveTemps deletes, under dir, the temporary files (".<name>.tmp-*") that Create
// made and a killed process never committed or aborted.
func RemoveTemps(dir string) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasPrefix(d.Name(), ".") && strings.Contains(d.Name(), ".tmp-") {
			return os.Remove(p)
		}
		return nil
	})
}
