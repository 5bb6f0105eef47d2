package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/attnscope/attnscope/checkpoint"
	"github.com/attnscope/attnscope/internal/atomicfile"
)

// isSampleTensors reports whether rel is one of a sample's tensors files
// (attention, hidden states, queries/keys/values, --store qk tensors).
func isSampleTensors(rel string) bool {
	parts := strings.Split(filepath.ToSlash(rel), "/")
	if len(parts) != 3 || parts[0] != SamplesDir {
		return false
	}
	switch parts[2] {
	case AttentionFile, HiddenFile, QKVFile, QKFile:
		return true
	}
	return false
}

// isDerivedOutput reports whether rel is a derived output (derived/<pass>/<id>.npy).
func isDerivedOutput(rel string) bool {
	parts := strings.Split(filepath.ToSlash(rel), "/")
	if len(parts) != 3 || parts[0] != DerivedDir || !strings.HasSuffix(parts[2], ".npy") {
		return false
	}
	return CheckSampleID(parts[1]) == nil && CheckSampleID(strings.TrimSuffix(parts[2], ".npy")) == nil
}

// Fetch downloads a file OpenRead left out of the local folder dir, a derived
// output (derived/<pass>/<id>.npy), when a reader first asks for it; an error
// wrapping fs.ErrNotExist for any other file, or when the object does not exist.
func (b *Bucket) Fetch(ctx context.Context, dir, rel string) error {
	if !isDerivedOutput(rel) {
		return fmt.Errorf("%s: %w", rel, fs.ErrNotExist)
	}
	_, err := b.c.StatObject(ctx, b.bucket, b.key(rel), minio.StatObjectOptions{})
	if r := minio.ToErrorResponse(err); r.Code == "NoSuchKey" || r.StatusCode == 404 {
		return fmt.Errorf("%s/%s: %w", b.url, rel, fs.ErrNotExist)
	}
	if err != nil {
		return b.explain(err, "read")
	}
	return b.download(ctx, rel, filepath.Join(dir, filepath.FromSlash(rel)))
}

// OpenRead opens the run argument arg for reading. A local path is Open. A run in
// object storage (s3://bucket/prefix) is opened from a local cache folder that holds
// its small files (run.json, sample.json, metrics, pass settings, manifests),
// downloaded now; the samples' tensors files and the derived outputs stay in the
// bucket: the Run reads a tensors file's header and then only the tensors, or the
// ranges of a tensor, asked for, with ranged requests (the bytes last read are kept,
// up to 64 MiB), and downloads a derived output when first asked. ctx bounds every
// later read.
func OpenRead(ctx context.Context, arg string) (*Run, error) {
	if !IsS3(arg) {
		return Open(arg)
	}
	b, err := OpenS3(ctx, arg)
	if err != nil {
		return nil, err
	}
	local, err := readCacheDir(b)
	if err != nil {
		return nil, err
	}
	skip := func(rel string) bool { return isSampleTensors(rel) || isDerivedOutput(rel) }
	left, err := b.pullSkipping(ctx, local, skip)
	if err != nil {
		return nil, err
	}
	r, err := Open(local)
	if err != nil {
		return nil, err
	}
	r.remote = &remoteRun{b: b, ctx: ctx, objects: left, tensors: map[string]*checkpoint.Safetensors{}}
	return r, nil
}

// remoteRun is what a Run opened by OpenRead reads from its bucket: the objects
// left out of the local folder, the tensors files opened (their headers) and the
// byte ranges last read.
type remoteRun struct {
	b       *Bucket
	ctx     context.Context
	objects map[string]objectInfo // run-relative path → object, of the files left out

	mu      sync.Mutex
	tensors map[string]*checkpoint.Safetensors
	kept    []keptRange // most recent last
	keptLen int64
}

type objectInfo struct {
	size int64
	mod  time.Time
}

type keptRange struct {
	rel  string
	off  int64
	data []byte
}

// remoteKeepBytes bounds the byte ranges a remote run keeps.
const remoteKeepBytes = 64 << 20

// Location is where the run lives: its s3:// address for a run opened from object
// storage (OpenRead), else its folder.
func (r *Run) Location() string {
	if r.remote != nil {
		return r.remote.b.url
	}
	return r.dir
}

// RemoteFile reports the size and modification time of the run-relative file rel
// when it is an object the local folder of a run opened by OpenRead leaves out.
func (r *Run) RemoteFile(rel string) (size int64, mod time.Time, ok bool) {
	if r.remote == nil {
		return 0, time.Time{}, false
	}
	o, ok := r.remote.objects[filepath.ToSlash(rel)]
	return o.size, o.mod, ok
}

// Fetch downloads the derived output rel (derived/<pass>/<id>.npy) of a run opened
// from object storage into its local folder; an error wrapping fs.ErrNotExist for a
// local run or another file.
func (r *Run) Fetch(rel string) error {
	if r.remote == nil {
		return fmt.Errorf("%s: %w", rel, fs.ErrNotExist)
	}
	return r.remote.b.Fetch(r.remote.ctx, r.dir, filepath.ToSlash(rel))
}

// localFile returns the local path of the run-relative file rel, downloading it
// first when it is a derived output the local folder of a remote run leaves out.
func (r *Run) localFile(rel string) string {
	p := filepath.Join(r.dir, filepath.FromSlash(rel))
	if r.remote == nil {
		return p
	}
	if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
		if _, ok := r.remote.objects[rel]; ok {
			_ = r.Fetch(rel) // a failure shows as the file missing, with its path
		}
	}
	return p
}

// openTensors opens the tensors file rel of the bucket (its header: two ranged
// requests, once per run); fs.ErrNotExist when the bucket has no such object.
func (rr *remoteRun) openTensors(rel string) (*checkpoint.Safetensors, error) {
	o, ok := rr.objects[rel]
	if !ok {
		return nil, fs.ErrNotExist
	}
	rr.mu.Lock()
	st := rr.tensors[rel]
	rr.mu.Unlock()
	if st != nil {
		return st, nil
	}
	st, err := checkpoint.OpenSafetensorsAt(rr.b.url+"/"+rel, objectReader{rr, rel}, o.size)
	if err != nil {
		return nil, err
	}
	rr.mu.Lock()
	rr.tensors[rel] = st
	rr.mu.Unlock()
	return st, nil
}

// objectReader reads an object of a remote run with ranged requests, keeping the
// ranges last read (a figure reads the layer another one read before it).
type objectReader struct {
	rr  *remoteRun
	rel string
}

func (o objectReader) ReadAt(p []byte, off int64) (int, error) {
	rr := o.rr
	rr.mu.Lock()
	for i := len(rr.kept) - 1; i >= 0; i-- {
		k := rr.kept[i]
		if k.rel == o.rel && k.off <= off && off+int64(len(p)) <= k.off+int64(len(k.data)) {
			copy(p, k.data[off-k.off:])
			rr.mu.Unlock()
			return len(p), nil
		}
	}
	rr.mu.Unlock()
	data, err := rr.b.ReadRange(rr.ctx, o.rel, off, int64(len(p)))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return 0, errors.New("the object no longer exists (deleted since the run was opened)")
		}
		return 0, err
	}
	copy(p, data)
	if len(data) > remoteKeepBytes {
		return len(p), nil // larger than all that is kept: not kept
	}
	rr.mu.Lock()
	defer rr.mu.Unlock()
	rr.kept = append(rr.kept, keptRange{o.rel, off, data})
	rr.keptLen += int64(len(data))
	for len(rr.kept) > 1 && rr.keptLen > remoteKeepBytes {
		rr.keptLen -= int64(len(rr.kept[0].data))
		rr.kept = rr.kept[1:]
	}
	return len(p), nil
}

// cacheDir is the local cache folder of b's run for commands that write it.
func cacheDir(b *Bucket) (string, error) { return cacheIn(b, "s3"), nil }

// readCacheDir is the local cache folder of b's run for readers: apart from the
// writers' one, which may hold a writer's work not yet in the bucket (a live writer
// on this machine, or one killed before its push), and pruned to the bucket's
// objects (pullSkipping), so that a reader sees the run as published.
func readCacheDir(b *Bucket) (string, error) { return cacheIn(b, "s3-read"), nil }

func cacheIn(b *Bucket, kind string) string {
	root := os.Getenv("ATTNSCOPE_CACHE")
	if root == "" {
		var err error
		if root, err = os.UserCacheDir(); err != nil {
			root = os.TempDir()
		}
		root = filepath.Join(root, "attnscope")
	}
	return filepath.Join(root, kind, b.bucket, filepath.FromSlash(b.prefix))
}

// pull downloads the run into dir as PullRun does, leaving out the files skip
// names.
func (b *Bucket) pull(ctx context.Context, dir string, skip func(rel string) bool) (int, error) {
	objs, err := b.objects(ctx)
	if err != nil {
		return 0, err
	}
	return b.pullObjects(ctx, dir, objs, skip)
}

// pullSkipping downloads the run into dir leaving out the files skip names, and
// returns those (a local copy of one whose size differs from its object's is
// removed: it is of an older run).
func (b *Bucket) pullSkipping(ctx context.Context, dir string, skip func(rel string) bool) (map[string]objectInfo, error) {
	objs, err := b.objects(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := b.pullObjects(ctx, dir, objs, skip); err != nil {
		return nil, err
	}
	if err := prune(dir, objs); err != nil {
		return nil, err
	}
	left := map[string]objectInfo{}
	for rel, o := range objs {
		if skip(rel) {
			left[rel] = o
			local := filepath.Join(dir, filepath.FromSlash(rel))
			if fi, err := os.Stat(local); err == nil && fi.Size() != o.size {
				if err := os.Remove(local); err != nil {
					return nil, err
				}
			}
		}
	}
	return left, nil
}

func (b *Bucket) pullObjects(ctx context.Context, dir string, objs map[string]objectInfo, skip func(rel string) bool) (int, error) {
	if _, ok := objs[RunFile]; !ok {
		return 0, fmt.Errorf("%s: no %s: not a run folder", b.url, RunFile)
	}
	rels := slices.Sorted(maps.Keys(objs))
	slices.SortStableFunc(rels, func(x, y string) int { return pushOrder(x) - pushOrder(y) })
	n := 0
	for _, rel := range rels {
		if skip != nil && skip(rel) {
			continue
		}
		local := filepath.Join(dir, filepath.FromSlash(rel))
		if fi, err := os.Stat(local); err == nil && fi.Size() == objs[rel].size && rel != RunFile {
			continue
		}
		if err := b.download(ctx, rel, local); err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

// download copies the object rel into the local file local (atomically).
func (b *Bucket) download(ctx context.Context, rel, local string) error {
	o, err := b.c.GetObject(ctx, b.bucket, b.key(rel), minio.GetObjectOptions{})
	if err != nil {
		return b.explain(err, "read")
	}
	defer o.Close()
	if err := os.MkdirAll(filepath.Dir(local), 0o755); err != nil {
		return err
	}
	if err := atomicfile.WriteWith(local, func(w io.Writer) error { _, err := io.Copy(w, o); return err }); err != nil {
		return b.explain(err, "read")
	}
	return nil
}

// prune removes the files of the local folder dir that are no objects of objs (of an
// older version of the run): hidden files (a download in progress) are kept.
func prune(dir string, objs map[string]objectInfo) error {
	return filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() || strings.HasPrefix(d.Name(), ".") {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		if _, ok := objs[filepath.ToSlash(rel)]; !ok {
			return os.Remove(p)
		}
		return nil
	})
}
