// Package web serves run folders as an interactive attention browser: a JSON and
// binary API over the run store and an embedded front end (plain JavaScript, CSS,
// SVG and canvas; no library, no network access).
//
// Views: the head view (tokens in two columns joined by lines weighted by
// attention, after BertViz's head view, Vig 2019, github.com/jessevig/bertviz),
// the model view (every layer × head as a thumbnail), the neuron view (query and
// key vectors, their elementwise product, scores and softmax of one query), the
// matrix view (a zoomable heatmap served as tiles of a max- and mean-pooled
// multi-resolution pyramid, as HiGlass serves contact matrices, Kerpedjiev et al.
// 2018), the source-code view, derived outputs and the metrics table, and a
// side-by-side comparison.
//
// The server only reads the runs it was given, through package store; the one
// thing it writes is the tile cache, RUN/cache/tiles/<sample>/<source>.pyr (a
// pyramid's cached levels and percentiles) and thumbs-l<layer>.thm (the model
// view's thumbnails of one layer), written atomically.
package web

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/attnscope/attnscope/checkpoint"
	"github.com/attnscope/attnscope/internal/atomicfile"
	"github.com/attnscope/attnscope/store"
)

// CacheDir is the tile cache folder inside a run folder.
const CacheDir = "cache/tiles"

// Options configure a Server.
type Options struct {
	// CacheBytes bounds the pyramids held in memory (default 512 MB).
	CacheBytes int
	// MaxConcurrent bounds the tile and matrix requests computed at once (default
	// 16); more wait for a slot or, after 10 s, are refused with 503.
	MaxConcurrent int
	// Log receives one line per problem worth a look (a cache that cannot be
	// written); nil: the standard logger.
	Log *log.Logger
	// Hosts are the host names accepted in the Host header besides IP literals and
	// "localhost" (a page on another site that rebinds its name to 127.0.0.1 is
	// refused).
	Hosts []string
	// AnyHost accepts every Host header: for a server deliberately bound to a
	// non-loopback address, reached by whatever name the network gives it.
	AnyHost bool
}

// Server serves a set of run folders. Create it with New; it is an http.Handler.
type Server struct {
	runs  []*runEntry
	byKey map[string]*runEntry
	opts  Options
	log   *log.Logger
	slots chan struct{}

	mu      sync.Mutex
	samples map[string]*sampleData   // run/sample → open sample
	pyrs    map[string]*list.Element // pyramids and thumbnails held in memory
	lru     *list.List               // of *pyrEntry, most recent first
	pyrMem  int
	calls   map[string]*buildCall
	writers sync.WaitGroup // cache files being written
}

// runEntry is one served run.
type runEntry struct {
	key  string     // URL name: the folder's base name, made unique
	real string     // absolute, symlinks resolved: every file served lies under it
	run  *store.Run // opened by store.OpenRead: files it leaves out are read from the bucket
}

type pyrEntry struct {
	key string
	v   cacheItem
}

type buildCall struct {
	done chan struct{}
	v    cacheItem
	err  error
}

// New opens the run folders dirs.
func New(dirs []string, opts Options) (*Server, error) {
	runs := make([]*store.Run, len(dirs))
	for i, d := range dirs {
		r, err := store.Open(d)
		if err != nil {
			return nil, err
		}
		runs[i] = r
	}
	return NewRuns(runs, opts)
}

// NewRuns serves open runs: local folders (store.Open) or runs in object storage
// (store.OpenRead), whose attention is read one layer at a time with ranged
// requests, --store qk tensors one block of rows at a time, and derived outputs
// downloaded when first asked.
func NewRuns(runs []*store.Run, opts Options) (*Server, error) {
	if len(runs) == 0 {
		return nil, errors.New("serve: no run folder given")
	}
	if opts.CacheBytes <= 0 {
		opts.CacheBytes = 512 << 20
	}
	if opts.MaxConcurrent <= 0 {
		opts.MaxConcurrent = 16
	}
	s := &Server{byKey: map[string]*runEntry{}, opts: opts, log: opts.Log,
		slots: make(chan struct{}, opts.MaxConcurrent), samples: map[string]*sampleData{},
		pyrs: map[string]*list.Element{}, lru: list.New(), calls: map[string]*buildCall{}}
	if s.log == nil {
		s.log = log.Default()
	}
	for _, r := range runs {
		d := r.Dir()
		abs, err := filepath.Abs(d)
		if err != nil {
			return nil, fmt.Errorf("serve %s: %w", d, err)
		}
		real, err := filepath.EvalSymlinks(abs)
		if err != nil {
			return nil, fmt.Errorf("serve %s: %w", d, err)
		}
		key := store.SampleID(filepath.Base(real))
		for i := 2; s.byKey[key] != nil; i++ {
			key = fmt.Sprintf("%s-%d", store.SampleID(filepath.Base(real)), i)
		}
		e := &runEntry{key: key, real: real, run: r}
		s.runs = append(s.runs, e)
		s.byKey[key] = e
	}
	return s, nil
}

// Close releases the memory-mapped files. Call it after the HTTP server has stopped.
func (s *Server) Close() error {
	s.writers.Wait()
	s.mu.Lock()
	defer s.mu.Unlock()
	for k, sd := range s.samples {
		sd.close()
		delete(s.samples, k)
	}
	return nil
}

// ListenAndServe serves s on addr until ctx is cancelled, then shuts down (5 s
// grace). ready, when not nil, receives the address listened on.
func (s *Server) ListenAndServe(ctx context.Context, addr string, ready func(net.Addr)) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("serve: %w", err)
	}
	srv := &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 120 * time.Second, IdleTimeout: 120 * time.Second, MaxHeaderBytes: 16 << 10,
		ErrorLog: log.New(io.Discard, "", 0)}
	if ready != nil {
		ready(ln.Addr())
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err = srv.Shutdown(sctx)
	s.Close()
	return err
}

// IsLoopback reports whether addr (host:port) binds only the loopback interface.
func IsLoopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// inside returns the path of rel inside run e with symlinks resolved, or an error
// when it does not exist (404) or resolves outside the run folder (403).
func (e *runEntry) inside(rel ...string) (string, error) {
	p := filepath.Join(append([]string{e.real}, rel...)...)
	real, err := filepath.EvalSymlinks(p)
	if errors.Is(err, fs.ErrNotExist) && strings.HasPrefix(p, e.real+string(filepath.Separator)) {
		ferr := e.run.Fetch(filepath.ToSlash(strings.TrimPrefix(p, e.real+string(filepath.Separator))))
		if ferr != nil && !errors.Is(ferr, fs.ErrNotExist) {
			return "", &httpError{http.StatusBadGateway, fmt.Sprintf("run %s: %v", e.key, ferr)}
		}
		if ferr == nil {
			real, err = filepath.EvalSymlinks(p)
		}
	}
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", notFound("run %s has no %s", e.key, filepath.ToSlash(filepath.Join(rel...)))
		}
		return "", notFound("run %s: %s cannot be read", e.key, filepath.ToSlash(filepath.Join(rel...)))
	}
	if real != e.real && !strings.HasPrefix(real, e.real+string(filepath.Separator)) {
		return "", &httpError{http.StatusForbidden, fmt.Sprintf("run %s: %s leads outside the run folder", e.key, filepath.ToSlash(filepath.Join(rel...)))}
	}
	return real, nil
}

// sampleFile returns the size and modification time (Unix ns) of a sample's file:
// inside the run folder, or an object of a run in object storage that its folder
// leaves out; inside's error when neither.
func (e *runEntry) sampleFile(id, file string) (size, mod int64, err error) {
	real, err := e.inside(store.SamplesDir, id, file)
	if err == nil {
		st, err := os.Stat(real)
		if err != nil {
			return 0, 0, notFound("run %s, sample %s: %v", e.key, id, err)
		}
		return st.Size(), st.ModTime().UnixNano(), nil
	}
	if he := (*httpError)(nil); errors.As(err, &he) && he.code == http.StatusForbidden {
		return 0, 0, err
	}
	if sz, t, ok := e.run.RemoteFile(store.SamplesDir + "/" + id + "/" + file); ok {
		return sz, t.UnixNano(), nil
	}
	return 0, 0, err
}

// sampleData is an open sample: its record and its memory-mapped attention.
type sampleData struct {
	run      *runEntry
	id       string
	info     *store.Sample
	att      *store.MappedAttention // nil: no attention file (or one in object storage, read by ranges)
	qk       *qkSource              // a --store qk sample: tiles recomputed (att nil)
	layers   int
	heads, n int
	dtype    checkpoint.DType
	attSize  int64
	attMod   int64
}

// sample opens (once) sample id of run e, checking every path against the run folder.
func (s *Server) sample(e *runEntry, id string) (*sampleData, error) {
	if err := store.CheckSampleID(id); err != nil {
		return nil, badRequest("%v", err)
	}
	key := e.key + "/" + id
	s.mu.Lock()
	sd := s.samples[key]
	s.mu.Unlock()
	if sd != nil {
		return sd, nil
	}
	jsonPath, err := e.inside(store.SamplesDir, id, store.SampleFile)
	if err != nil {
		return nil, notFound("run %s has no sample %q", e.key, id)
	}
	info, err := e.run.Sample(id)
	if err != nil || filepath.Dir(jsonPath) != filepath.Join(e.real, store.SamplesDir, id) {
		return nil, notFound("run %s has no sample %q", e.key, id)
	}
	sd = &sampleData{run: e, id: id, info: info}
	if info.QK != nil {
		if err := sd.openQK(); err != nil {
			return nil, err
		}
	} else if _, _, err := e.sampleFile(id, store.AttentionFile); err == nil {
		if err := sd.openAttention(); err != nil {
			return nil, err
		}
	} else if he := (*httpError)(nil); errors.As(err, &he) && he.code == http.StatusForbidden {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if old := s.samples[key]; old != nil {
		sd.close()
		return old, nil
	}
	s.samples[key] = sd
	return sd, nil
}

func (sd *sampleData) openAttention() error {
	a, err := sd.run.run.MapAttention(sd.id)
	if err != nil {
		return &httpError{http.StatusUnprocessableEntity, fmt.Sprintf("run %s, sample %s: %v", sd.run.key, sd.id, err)}
	}
	sd.att, sd.layers, sd.heads, sd.n, sd.dtype = a, a.Layers, a.Heads, a.N, a.DType
	sd.attSize, sd.attMod = a.Size, a.ModUnixNano
	return nil
}

// close releases the sample's attention file.
func (sd *sampleData) close() {
	if sd.att != nil {
		sd.att.Close()
	}
	if sd.qk != nil {
		_ = sd.qk.release()
	}
}

// head returns layer l, head h of the attention as a matrix: from the mapped
// attention file, or recomputed from queries and keys for a --store qk sample.
func (sd *sampleData) head(l, h int) (matrix, error) {
	if sd.att == nil && sd.qk == nil {
		return nil, notFound("sample %s has no attention", sd.id)
	}
	if l < 0 || l >= sd.layers {
		return nil, notFound("sample %s has no layer %d (layers 0..%d)", sd.id, l, sd.layers-1)
	}
	if h < 0 || h >= sd.heads {
		return nil, notFound("sample %s has no head %d (heads 0..%d)", sd.id, h, sd.heads-1)
	}
	if sd.qk != nil {
		if err := sd.qk.check(l, h); err != nil {
			return nil, &httpError{http.StatusUnprocessableEntity, fmt.Sprintf("run %s, sample %s: %v", sd.run.key, sd.id, err)}
		}
		return &qkMatrix{src: sd.qk, l: l, h: h}, nil
	}
	b, err := sd.att.Layer(l)
	if err != nil {
		return nil, err
	}
	return rawMatrix{b: b, dt: sd.dtype, n: sd.n, off: h * sd.n * sd.n}, nil
}

// pyramid returns the pyramid of layer l, head h of sample sd's attention and
// the head as a matrix.
func (s *Server) pyramid(sd *sampleData, l, h int) (*pyramid, matrix, error) {
	m, err := sd.head(l, h)
	if err != nil {
		return nil, nil, err
	}
	p, err := s.pyramidFor(sd, pyrSource{name: fmt.Sprintf("attention-l%d-h%d.pyr", l, h),
		size: sd.attSize, mod: sd.attMod, load: func() (matrix, error) { return m, nil }})
	return p, m, err
}

// pyrSource is a matrix a pyramid is built from.
type pyrSource struct {
	name      string // cache file name
	size, mod int64  // the source file's size and modification time
	load      func() (matrix, error)
	keep      bool // hold the matrix with the pyramid (read into memory, not mapped)
}

// pyramidFor returns the pyramid of src: from memory, from the cache file, or
// built (once, however many requests ask at the same time).
func (s *Server) pyramidFor(sd *sampleData, src pyrSource) (*pyramid, error) {
	v, err := s.cached(sd.run.key+"/"+sd.id+"/"+src.name, func() (cacheItem, error) { return s.loadOrBuild(sd, src) })
	if err != nil {
		return nil, err
	}
	return v.(*pyramid), nil
}

// cacheItem is what the server holds in memory: a pyramid or a layer's thumbnails.
type cacheItem interface{ bytes() int }

// cached returns the item of key from memory, or makes it with build (once,
// however many requests ask at the same time) and keeps it, dropping the least
// recently used items beyond Options.CacheBytes.
func (s *Server) cached(key string, build func() (cacheItem, error)) (cacheItem, error) {
	s.mu.Lock()
	if el, ok := s.pyrs[key]; ok {
		s.lru.MoveToFront(el)
		s.mu.Unlock()
		return el.Value.(*pyrEntry).v, nil
	}
	if c, ok := s.calls[key]; ok {
		s.mu.Unlock()
		<-c.done
		return c.v, c.err
	}
	c := &buildCall{done: make(chan struct{})}
	s.calls[key] = c
	s.mu.Unlock()

	c.v, c.err = build()
	s.mu.Lock()
	delete(s.calls, key)
	if c.err == nil {
		s.pyrs[key] = s.lru.PushFront(&pyrEntry{key, c.v})
		s.pyrMem += c.v.bytes()
		for s.pyrMem > s.opts.CacheBytes && s.lru.Len() > 1 {
			old := s.lru.Remove(s.lru.Back()).(*pyrEntry)
			delete(s.pyrs, old.key)
			s.pyrMem -= old.v.bytes()
		}
	}
	s.mu.Unlock()
	close(c.done)
	return c.v, c.err
}

func (s *Server) loadOrBuild(sd *sampleData, src pyrSource) (*pyramid, error) {
	m, err := src.load()
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(sd.run.real, filepath.FromSlash(CacheDir), sd.id)
	path := filepath.Join(dir, src.name)
	if real, err := sd.run.inside(filepath.FromSlash(CacheDir), sd.id, src.name); err == nil {
		if b, err := os.ReadFile(real); err == nil {
			if p, err := decodePyramid(b, m.Size(), src.size, src.mod); err == nil {
				if src.keep {
					p.m = m
				}
				return p, nil
			}
		}
	}
	p := buildPyramid(m)
	s.writeCacheLater(sd.run, dir, path, func(w io.Writer) error { return p.encode(w, src.size, src.mod) })
	if src.keep {
		p.m = m
	}
	return p, nil
}

// writeCacheLater writes a cache file after the answer, in the background; Close
// waits for it.
func (s *Server) writeCacheLater(e *runEntry, dir, path string, encode func(io.Writer) error) {
	s.writers.Add(1)
	go func() {
		defer s.writers.Done()
		if err := s.writeCache(e, dir, path, encode); err != nil {
			s.log.Printf("serve: tile cache not written (kept in memory only): %v", err)
		}
	}()
}

// writeCache writes a cache file atomically, refusing a cache folder that a
// symlink leads out of the run.
func (s *Server) writeCache(e *runEntry, dir, path string, encode func(io.Writer) error) error {
	rel, err := filepath.Rel(e.real, dir)
	if err != nil {
		return err
	}
	p := e.real
	for _, part := range strings.Split(rel, string(filepath.Separator)) {
		p = filepath.Join(p, part)
		fi, err := os.Lstat(p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if err := os.Mkdir(p, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
				return err
			}
		case err != nil:
			return err
		case !fi.IsDir():
			return fmt.Errorf("%s is not a folder (a symlink?): the cache is only written inside the run", p)
		}
	}
	return atomicfile.WriteWith(path, encode)
}
