package store

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/minio/minio-go/v7"

	"github.com/attnscope/attnscope/checkpoint"
	"github.com/attnscope/attnscope/internal/atomicfile"
)

// RemoteAttention is a sample's attention file in object storage read with ranged
// requests: its safetensors header when opened, then one layer's bytes when asked
// (the last layers read are kept, up to 64 MiB). It offers what MappedAttention
// does, so a reader (the web view) can use either.
type RemoteAttention struct {
	b                 *Bucket
	ctx               context.Context
	rel               string
	dataStart         int64
	offsets           [][2]int64 // per layer, relative to dataStart
	Layers, Heads, N  int
	DType             checkpoint.DType
	Size, ModUnixNano int64

	mu    sync.Mutex
	cache map[int][]byte
	order []int
}

// remoteCacheBytes bounds the layers a RemoteAttention keeps.
const remoteCacheBytes = 64 << 20

// OpenAttention reads the header of sample id's attention file (two ranged requests
// and a HEAD); nil without error when the sample has no attention file. The layers
// are read later with ctx.
func (b *Bucket) OpenAttention(ctx context.Context, id string) (*RemoteAttention, error) {
	if err := CheckSampleID(id); err != nil {
		return nil, err
	}
	rel := path.Join(SamplesDir, id, AttentionFile)
	st, err := b.c.StatObject(ctx, b.bucket, b.key(rel), minio.StatObjectOptions{})
	if minio.ToErrorResponse(err).Code == "NoSuchKey" || minio.ToErrorResponse(err).StatusCode == 404 {
		return nil, nil
	}
	if err != nil {
		return nil, b.explain(err, "read")
	}
	a := &RemoteAttention{b: b, ctx: ctx, rel: rel, Size: st.Size, ModUnixNano: st.LastModified.UnixNano(), cache: map[int][]byte{}}
	infos, start, err := b.safetensorsHeader(ctx, rel)
	if err != nil {
		return nil, err
	}
	a.dataStart = start
	for l := 0; ; l++ {
		t, ok := infos[AttentionName(l)]
		if !ok {
			break
		}
		dt := checkpoint.DType(t.DType)
		if len(t.Shape) != 3 || t.Shape[1] != t.Shape[2] || t.Shape[1] == 0 ||
			(dt != checkpoint.F32 && dt != checkpoint.F16 && dt != checkpoint.BF16) ||
			(l > 0 && (t.Shape[0] != a.Heads || t.Shape[1] != a.N || dt != a.DType)) {
			return nil, fmt.Errorf("read %s/%s: tensor %q has dtype %s and shape %v, F32/F16/BF16 [heads, query, key] like layer 0 expected", b.url, rel, AttentionName(l), dt, t.Shape)
		}
		a.Heads, a.N, a.DType = t.Shape[0], t.Shape[1], dt
		width := int64(4)
		if dt != checkpoint.F32 {
			width = 2
		}
		if t.Offsets[1]-t.Offsets[0] != int64(a.Heads*a.N*a.N)*width || t.Offsets[0] < 0 || start+t.Offsets[1] > st.Size {
			return nil, fmt.Errorf("read %s/%s: tensor %q: its data offsets %v do not fit its shape and the file", b.url, rel, AttentionName(l), t.Offsets)
		}
		a.offsets = append(a.offsets, t.Offsets)
		a.Layers++
	}
	if a.Layers == 0 {
		return nil, fmt.Errorf("read %s/%s: no tensor %s", b.url, rel, AttentionName(0))
	}
	return a, nil
}

type tensorInfo struct {
	DType   string   `json:"dtype"`
	Shape   []int    `json:"shape"`
	Offsets [2]int64 `json:"data_offsets"`
}

// safetensorsHeader reads the header of the safetensors object rel: its tensors and
// where their data starts.
func (b *Bucket) safetensorsHeader(ctx context.Context, rel string) (map[string]tensorInfo, int64, error) {
	head, err := b.ReadRange(ctx, rel, 0, 8)
	if err != nil {
		return nil, 0, err
	}
	hlen := binary.LittleEndian.Uint64(head)
	if hlen > 100<<20 {
		return nil, 0, fmt.Errorf("%s/%s: a safetensors header of %d bytes", b.url, rel, hlen)
	}
	hdr, err := b.ReadRange(ctx, rel, 8, int64(hlen))
	if err != nil {
		return nil, 0, err
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(hdr, &raw); err != nil {
		return nil, 0, fmt.Errorf("%s/%s: invalid safetensors header: %w", b.url, rel, err)
	}
	out := map[string]tensorInfo{}
	for k, v := range raw {
		if k == "__metadata__" {
			continue
		}
		var ti tensorInfo
		if err := json.Unmarshal(v, &ti); err != nil {
			return nil, 0, fmt.Errorf("%s/%s: %s: %w", b.url, rel, k, err)
		}
		out[k] = ti
	}
	return out, 8 + int64(hlen), nil
}

// Layer returns layer l as stored (Heads × N × N little-endian values of DType),
// fetched with one ranged request unless kept from an earlier call.
func (a *RemoteAttention) Layer(l int) ([]byte, error) {
	if l < 0 || l >= a.Layers {
		return nil, fmt.Errorf("read %s/%s: no layer %d (the sample has %d layers)", a.b.url, a.rel, l, a.Layers)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if b, ok := a.cache[l]; ok {
		return b, nil
	}
	off := a.offsets[l]
	b, err := a.b.ReadRange(a.ctx, a.rel, a.dataStart+off[0], off[1]-off[0])
	if err != nil {
		return nil, err
	}
	kept := int64(len(b))
	for _, k := range a.order {
		kept += int64(len(a.cache[k]))
	}
	for len(a.order) > 0 && kept > remoteCacheBytes {
		kept -= int64(len(a.cache[a.order[0]]))
		delete(a.cache, a.order[0])
		a.order = a.order[1:]
	}
	a.cache[l] = b
	a.order = append(a.order, l)
	return b, nil
}

// Close forgets the kept layers.
func (a *RemoteAttention) Close() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.cache, a.order = map[int][]byte{}, nil
	return nil
}

// IsSampleAttention reports whether the run-relative path rel is a sample's attention
// file (samples/<id>/attention.safetensors).
func IsSampleAttention(rel string) bool {
	parts := strings.Split(filepath.ToSlash(rel), "/")
	return len(parts) == 3 && parts[0] == SamplesDir && parts[2] == AttentionFile
}

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
	local, err := cacheDir(b)
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

// OpenRemoteAttention opens sample id's attention in the bucket of a run opened by
// OpenRead (Bucket.OpenAttention); nil without error for a local run.
func (r *Run) OpenRemoteAttention(id string) (*RemoteAttention, error) {
	if r.remote == nil {
		return nil, nil
	}
	return r.remote.b.OpenAttention(r.remote.ctx, id)
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
			return 0, fmt.Errorf("the object %s/%s no longer exists", rr.b.url, o.rel)
		}
		return 0, err
	}
	copy(p, data)
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

// cacheDir is the local cache folder of b's run.
func cacheDir(b *Bucket) (string, error) {
	root := os.Getenv("ATTNSCOPE_CACHE")
	if root == "" {
		var err error
		if root, err = os.UserCacheDir(); err != nil {
			root = os.TempDir()
		}
		root = filepath.Join(root, "attnscope")
	}
	return filepath.Join(root, "s3", b.bucket, filepath.FromSlash(b.prefix)), nil
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
