package checkpoint

// NumPy .npz archives: a zip file of .npy members, stored (np.savez) or deflated
// (np.savez_compressed); the array named "x" is the member "x.npy".

import (
	"archive/zip"
	"bufio"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/attnscope/attnscope/internal/atomicfile"
)

// NpzFile is an open .npz archive whose arrays are read on demand.
type NpzFile struct {
	path    string
	zr      *zip.ReadCloser
	members map[string]*zip.File
	names   []string
}

// OpenNpz opens a .npz archive and lists its arrays.
func OpenNpz(path string) (*NpzFile, error) {
	zr, err := zip.OpenReader(path)
	if err != nil {
		return nil, fmt.Errorf("read %s: not a .npz (zip) archive: %w", path, err)
	}
	f := &NpzFile{path: path, zr: zr, members: map[string]*zip.File{}}
	for _, m := range zr.File {
		if strings.HasSuffix(m.Name, "/") {
			continue
		}
		name, ok := strings.CutSuffix(m.Name, ".npy")
		if !ok {
			zr.Close()
			return nil, fmt.Errorf("read %s: member %q is not a .npy array", path, m.Name)
		}
		if _, dup := f.members[name]; dup {
			zr.Close()
			return nil, fmt.Errorf("read %s: array %q appears twice", path, name)
		}
		f.members[name] = m
		f.names = append(f.names, name)
	}
	sort.Strings(f.names)
	return f, nil
}

// Names returns the array names, sorted.
func (f *NpzFile) Names() []string { return append([]string{}, f.names...) }

// Header reads the header of one array without its data.
func (f *NpzFile) Header(name string) (*NpyHeader, error) {
	m, ok := f.members[name]
	if !ok {
		return nil, fmt.Errorf("read %s: no array %q", f.path, name)
	}
	rc, err := m.Open()
	if err != nil {
		return nil, fmt.Errorf("read %s: array %q: %w", f.path, name, err)
	}
	defer rc.Close()
	h, err := ReadNpyHeader(rc)
	if err != nil {
		return nil, fmt.Errorf("read %s: array %q: %w", f.path, name, err)
	}
	return h, nil
}

// OpenArray opens one array for streaming: it returns the array's header and a
// reader positioned at its first element; the caller closes the reader.
func (f *NpzFile) OpenArray(name string) (*NpyHeader, io.ReadCloser, error) {
	m, ok := f.members[name]
	if !ok {
		return nil, nil, fmt.Errorf("read %s: no array %q", f.path, name)
	}
	rc, err := m.Open()
	if err != nil {
		return nil, nil, fmt.Errorf("read %s: array %q: %w", f.path, name, err)
	}
	br := bufio.NewReaderSize(rc, 1<<20)
	h, err := ReadNpyHeader(br)
	if err != nil {
		rc.Close()
		return nil, nil, fmt.Errorf("read %s: array %q: %w", f.path, name, err)
	}
	return h, struct {
		io.Reader
		io.Closer
	}{br, rc}, nil
}

// Read reads one array.
func (f *NpzFile) Read(name string) (*NpyArray, error) {
	m, ok := f.members[name]
	if !ok {
		return nil, fmt.Errorf("read %s: no array %q", f.path, name)
	}
	rc, err := m.Open()
	if err != nil {
		return nil, fmt.Errorf("read %s: array %q: %w", f.path, name, err)
	}
	defer rc.Close()
	a, err := ReadNpy(bufio.NewReaderSize(rc, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("read %s: array %q: %w", f.path, name, err)
	}
	return a, nil
}

// Close closes the archive.
func (f *NpzFile) Close() error { return f.zr.Close() }

// ReadNpz reads every array of a .npz archive.
func ReadNpz(path string) (map[string]*NpyArray, error) {
	f, err := OpenNpz(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	out := make(map[string]*NpyArray, len(f.names))
	for _, n := range f.names {
		a, err := f.Read(n)
		if err != nil {
			return nil, err
		}
		out[n] = a
	}
	return out, nil
}

// NpzWriter writes a .npz archive atomically, one array at a time: nothing appears
// under the final name until Commit.
type NpzWriter struct {
	af       *atomicfile.File
	zw       *zip.Writer
	compress bool
	names    map[string]bool
}

// CreateNpz starts a .npz archive at path; compress selects deflate
// (np.savez_compressed) over stored members (np.savez).
func CreateNpz(path string, compress bool) (*NpzWriter, error) {
	af, err := atomicfile.Create(path)
	if err != nil {
		return nil, err
	}
	return &NpzWriter{af: af, zw: zip.NewWriter(af), compress: compress, names: map[string]bool{}}, nil
}

// Write adds the array name (flat C-order data of shape; the types of WriteNpy).
func (w *NpzWriter) Write(name string, shape []int, data any) error {
	if name == "" || strings.Contains(name, "/") {
		return fmt.Errorf("write %s: invalid array name %q", w.af.Name(), name)
	}
	if w.names[name] {
		return fmt.Errorf("write %s: array %q written twice", w.af.Name(), name)
	}
	w.names[name] = true
	method := zip.Store
	if w.compress {
		method = zip.Deflate
	}
	mw, err := w.zw.CreateHeader(&zip.FileHeader{Name: name + ".npy", Method: method})
	if err != nil {
		return fmt.Errorf("write %s: %w", w.af.Name(), err)
	}
	if err := WriteNpy(mw, shape, data); err != nil {
		return fmt.Errorf("write %s: array %q: %w", w.af.Name(), name, err)
	}
	return nil
}

// Commit finishes the archive and moves it to its final name.
func (w *NpzWriter) Commit() error {
	if err := w.zw.Close(); err != nil {
		w.af.Abort()
		return fmt.Errorf("write %s: %w", w.af.Name(), err)
	}
	return w.af.Commit()
}

// Abort discards the archive; it is safe after Commit.
func (w *NpzWriter) Abort() { w.af.Abort() }
