package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"net"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"
)

// A run folder can live in S3-compatible object storage at s3://bucket/prefix: the
// same layout, one object per file (RUN/samples/<id>/attention.safetensors is the
// object prefix/samples/<id>/attention.safetensors). Bucket reaches it with minio-go,
// any S3-compatible endpoint: AWS_ENDPOINT_URL_S3 or AWS_ENDPOINT_URL (default
// https://s3.amazonaws.com), AWS_REGION, credentials from AWS_ACCESS_KEY_ID /
// AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN, else the shared credentials file
// (AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials, profile AWS_PROFILE), else
// MINIO_ACCESS_KEY / MINIO_SECRET_KEY.
//
// Writes are atomic per object: the bytes go to a temporary key under
// prefix/.tmp/, then a server-side copy publishes them under the final key and the
// temporary object is deleted, so a reader never sees a partial object (uploads over
// 16 MiB are multipart).
//
// A writer killed between the upload and the copy (kill -9, a preempted Slurm job)
// leaves its temporary object behind. Each command that writes a run claims a writer
// name (Claim: capture, capture-shard-1-of-2, derive-shard-0-of-4, merge) and keeps
// its temporary objects under prefix/.tmp/<writer>/; claiming deletes what an
// earlier writer of that name left there. Two shards of one run may write under one
// prefix at the same time, so a writer never deletes another writer's temporary
// objects: only its own name's, which no other live process holds (one process per
// shard of a command at a time, as the shard's files themselves require). PushRun uploads a sample's tensors before its sample.json
// and run.json last, keeping the rule that a sample is finished when its sample.json
// exists. Reads are ranged: a Run opened with OpenRead fetches a tensors file's
// header and then the tensors (or ranges of a tensor) asked for, not the sample.

// S3Scheme prefixes run folders in object storage.
const S3Scheme = "s3://"

// IsS3 reports whether a run folder argument names object storage.
func IsS3(p string) bool { return strings.HasPrefix(p, S3Scheme) }

// s3Timeout bounds the first request to an endpoint, so that a wrong endpoint or
// credentials fail in one sentence within seconds, not after minutes of retries.
const s3Timeout = 8 * time.Second

// multipartSize is the part size of multipart uploads (objects larger are split).
const multipartSize = 16 << 20

// Bucket is a run folder in object storage.
type Bucket struct {
	c              *minio.Client
	bucket, prefix string
	url            string
	writer         string // set by Claim: temporary objects go under prefix/.tmp/<writer>/
}

// ParseS3URL splits s3://bucket/prefix.
func ParseS3URL(u string) (bucket, prefix string, err error) {
	rest, ok := strings.CutPrefix(u, S3Scheme)
	if !ok {
		return "", "", fmt.Errorf("%s: an s3://bucket/prefix address expected", u)
	}
	bucket, prefix, _ = strings.Cut(rest, "/")
	prefix = strings.Trim(prefix, "/")
	if bucket == "" || prefix == "" || strings.Contains(prefix, "//") {
		return "", "", fmt.Errorf("%s: an s3://bucket/prefix address with a bucket and a non-empty prefix expected", u)
	}
	return bucket, prefix, nil
}

// s3Credentials is the standard chain: environment, shared file, MinIO variables.
func s3Credentials() *credentials.Credentials {
	return credentials.NewChainCredentials([]credentials.Provider{
		&credentials.EnvAWS{},
		&credentials.FileAWSCredentials{Filename: os.Getenv("AWS_SHARED_CREDENTIALS_FILE"), Profile: os.Getenv("AWS_PROFILE")},
		&credentials.EnvMinio{},
	})
}

// OpenS3 connects to the run folder at u and checks that its bucket is reachable with
// the credentials found (within about 8 s).
func OpenS3(ctx context.Context, u string) (*Bucket, error) {
	bucket, prefix, err := ParseS3URL(u)
	if err != nil {
		return nil, err
	}
	endpoint := os.Getenv("AWS_ENDPOINT_URL_S3")
	if endpoint == "" {
		endpoint = os.Getenv("AWS_ENDPOINT_URL")
	}
	if endpoint == "" {
		endpoint = "https://s3.amazonaws.com"
	}
	ep, err := url.Parse(endpoint)
	if err != nil || ep.Host == "" || (ep.Scheme != "http" && ep.Scheme != "https") {
		return nil, fmt.Errorf("AWS_ENDPOINT_URL %q: an http:// or https:// address expected", endpoint)
	}
	c, err := minio.New(ep.Host, &minio.Options{
		Creds: s3Credentials(), Secure: ep.Scheme == "https", Region: os.Getenv("AWS_REGION"),
		BucketLookup: minio.BucketLookupPath, MaxRetries: 1,
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", u, err)
	}
	b := &Bucket{c: c, bucket: bucket, prefix: prefix, url: u}
	cctx, cancel := context.WithTimeout(ctx, s3Timeout)
	defer cancel()
	ok, err := c.BucketExists(cctx, bucket)
	if err != nil {
		return nil, b.explain(err, "reach")
	}
	if !ok {
		return nil, fmt.Errorf("%s: bucket %q does not exist at %s", u, bucket, endpoint)
	}
	return b, nil
}

// explain turns a client error into one sentence naming the run folder.
func (b *Bucket) explain(err error, verb string) error {
	var ne net.Error
	resp := minio.ToErrorResponse(err)
	switch {
	case errors.Is(err, context.DeadlineExceeded) || errors.As(err, &ne) && ne.Timeout():
		return fmt.Errorf("%s: the endpoint %s did not answer within %v", b.url, b.c.EndpointURL().Host, s3Timeout)
	case errors.As(err, &ne) || strings.Contains(err.Error(), "connection refused") || strings.Contains(err.Error(), "no such host"):
		return fmt.Errorf("%s: cannot connect to the endpoint %s (%v)", b.url, b.c.EndpointURL().Host, err)
	case resp.Code == "InvalidAccessKeyId" || resp.Code == "SignatureDoesNotMatch" || resp.StatusCode == 403 && verb == "reach":
		return fmt.Errorf("%s: the endpoint refused the credentials: check AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY or the credentials file", b.url)
	case resp.Code == "AccessDenied" || resp.StatusCode == 403:
		return fmt.Errorf("%s: access denied: the credentials may not %s objects in bucket %q", b.url, verb, b.bucket)
	case resp.Code == "NoSuchKey":
		return fmt.Errorf("%s: %w", b.url, fs.ErrNotExist)
	}
	return fmt.Errorf("%s: %s: %w", b.url, verb, err)
}

// key is the object key of a run-relative path.
func (b *Bucket) key(rel string) string { return b.prefix + "/" + path.Clean(filepath.ToSlash(rel)) }

// CheckWritable writes and deletes a probe object under prefix/.tmp/, so that a bucket
// the credentials may not write to is refused before anything else is written.
func (b *Bucket) CheckWritable(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s3Timeout)
	defer cancel()
	k := b.tempKey("probe")
	if _, err := b.c.PutObject(ctx, b.bucket, k, strings.NewReader("probe"), 5, minio.PutObjectOptions{}); err != nil {
		return b.explain(err, "write")
	}
	if err := b.c.RemoveObject(ctx, b.bucket, k, minio.RemoveObjectOptions{}); err != nil {
		return b.explain(err, "delete")
	}
	return nil
}

func (b *Bucket) tempKey(base string) string {
	var r [8]byte
	rand.Read(r[:])
	return b.tempDir() + hex.EncodeToString(r[:]) + "-" + path.Base(base)
}

// tempDir is the key prefix of b's temporary objects.
func (b *Bucket) tempDir() string {
	if b.writer == "" {
		return b.prefix + "/.tmp/"
	}
	return b.prefix + "/.tmp/" + b.writer + "/"
}

// Claim makes b write as writer (a name without slashes, one process at a time per
// name and run): its temporary objects go under prefix/.tmp/<writer>/, and those an
// earlier process of that name left there (killed between an upload and its copy)
// are deleted. It returns how many were deleted.
func (b *Bucket) Claim(ctx context.Context, writer string) (int, error) {
	if writer == "" || strings.ContainsAny(writer, "/\\") || writer == "." || writer == ".." {
		return 0, fmt.Errorf("%s: writer name %q: a name without slashes expected", b.url, writer)
	}
	b.writer = writer
	n := 0
	for o := range b.c.ListObjects(ctx, b.bucket, minio.ListObjectsOptions{Prefix: b.tempDir(), Recursive: true}) {
		if o.Err != nil {
			return n, b.explain(o.Err, "list")
		}
		if err := b.c.RemoveObject(ctx, b.bucket, o.Key, minio.RemoveObjectOptions{}); err != nil {
			return n, b.explain(err, "delete")
		}
		n++
	}
	return n, nil
}

// PutAtomic uploads size bytes of r as the run-relative file rel: to a temporary key
// first (multipart above 16 MiB), then copied to its key server-side; the temporary
// object is always deleted. meta is stored as user metadata.
func (b *Bucket) PutAtomic(ctx context.Context, rel string, r io.Reader, size int64, meta map[string]string) error {
	tmp := b.tempKey(rel)
	defer b.c.RemoveObject(context.WithoutCancel(ctx), b.bucket, tmp, minio.RemoveObjectOptions{})
	// UNSIGNED-PAYLOAD instead of minio-go's streaming (aws-chunked) signature, which
	// it uses on plain-http endpoints and which some S3-compatible servers (gofakes3)
	// store framing and all in multipart parts.
	if _, err := b.c.PutObject(ctx, b.bucket, tmp, r, size, minio.PutObjectOptions{PartSize: multipartSize, UserMetadata: meta, DisableContentSha256: true}); err != nil {
		return b.explain(err, "write")
	}
	dst := minio.CopyDestOptions{Bucket: b.bucket, Object: b.key(rel), UserMetadata: meta, ReplaceMetadata: len(meta) > 0}
	if _, err := b.c.CopyObject(ctx, dst, minio.CopySrcOptions{Bucket: b.bucket, Object: tmp}); err != nil {
		return b.explain(err, "write")
	}
	return nil
}

// ReadRange reads n bytes of rel from off (n < 0: to the end).
func (b *Bucket) ReadRange(ctx context.Context, rel string, off, n int64) ([]byte, error) {
	opts := minio.GetObjectOptions{}
	if off > 0 || n >= 0 {
		end := int64(-1)
		if n >= 0 {
			end = off + n - 1
		}
		if n == 0 {
			return []byte{}, nil
		}
		if err := opts.SetRange(off, end); err != nil {
			return nil, err
		}
	}
	o, err := b.c.GetObject(ctx, b.bucket, b.key(rel), opts)
	if err != nil {
		return nil, b.explain(err, "read")
	}
	defer o.Close()
	data, err := io.ReadAll(o)
	if err != nil {
		return nil, b.explain(err, "read")
	}
	if n >= 0 && int64(len(data)) != n {
		return nil, fmt.Errorf("%s/%s: %d bytes at %d expected, %d read", b.url, rel, n, off, len(data))
	}
	return data, nil
}

// ReadFile reads the whole run-relative file rel.
func (b *Bucket) ReadFile(ctx context.Context, rel string) ([]byte, error) {
	return b.ReadRange(ctx, rel, 0, -1)
}

// List returns the run-relative paths of every object of the run (temporary objects
// excluded), sorted.
func (b *Bucket) List(ctx context.Context) ([]string, error) {
	objs, err := b.objects(ctx)
	if err != nil {
		return nil, err
	}
	return slices.Sorted(maps.Keys(objs)), nil
}

// objects lists the run's objects (temporary objects excluded) by run-relative path.
func (b *Bucket) objects(ctx context.Context) (map[string]objectInfo, error) {
	out := map[string]objectInfo{}
	for o := range b.c.ListObjects(ctx, b.bucket, minio.ListObjectsOptions{Prefix: b.prefix + "/", Recursive: true}) {
		if o.Err != nil {
			return nil, b.explain(o.Err, "list")
		}
		rel := strings.TrimPrefix(o.Key, b.prefix+"/")
		if strings.HasPrefix(rel, ".tmp/") {
			continue
		}
		out[rel] = objectInfo{size: o.Size, mod: o.LastModified}
	}
	return out, nil
}

// pushOrder ranks run files so that markers go last: tensors and metric rows, then
// derived outputs, then sample.json, then tables and manifests, then run.json.
func pushOrder(rel string) int {
	base := path.Base(rel)
	switch {
	case rel == RunFile:
		return 5
	case strings.HasPrefix(rel, ShardsDir+"/") || !strings.Contains(rel, "/"):
		return 4
	case base == SampleFile:
		return 3
	case strings.HasSuffix(base, ".npy"):
		return 2
	}
	return 1
}

const shaMeta = "Attnscope-Sha256"

// PushRun uploads the local run folder dir into the bucket, each file atomically and
// markers last (see pushOrder). A file whose object already holds the same bytes
// (SHA-256 recorded in the object's metadata) is not uploaded again, so pushing
// again after a resumed run sends only what changed. It returns the files uploaded.
func (b *Bucket) PushRun(ctx context.Context, dir string) (int, error) {
	var files []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() && !strings.HasPrefix(d.Name(), ".") {
			rel, _ := filepath.Rel(dir, p)
			files = append(files, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	slices.SortStableFunc(files, func(x, y string) int { return pushOrder(x) - pushOrder(y) })
	n := 0
	for _, rel := range files {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		sum, size, err := fileSHA256(filepath.Join(dir, rel))
		if err != nil {
			return n, err
		}
		if st, err := b.c.StatObject(ctx, b.bucket, b.key(rel), minio.StatObjectOptions{}); err == nil && st.UserMetadata[shaMeta] == sum && st.Size == size {
			continue
		}
		f, err := os.Open(filepath.Join(dir, rel))
		if err != nil {
			return n, err
		}
		err = b.PutAtomic(ctx, rel, f, size, map[string]string{shaMeta: sum})
		f.Close()
		if err != nil {
			return n, err
		}
		n++
	}
	return n, nil
}

func fileSHA256(p string) (string, int64, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", 0, err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	return hex.EncodeToString(h.Sum(nil)), n, err
}

// PullRun downloads the run into the local folder dir (each file atomically, sample.json
// after its tensors, run.json last); files dir already holds with the same size are
// kept. It returns the files downloaded.
func (b *Bucket) PullRun(ctx context.Context, dir string) (int, error) {
	return b.pull(ctx, dir, nil)
}

// Stage gives commands that work on local folders a run folder argument that may be
// s3://bucket/prefix: for a local path it returns the path and a no-op; for an S3 run
// it connects, pulls the run (if it exists) into a local cache folder
// ($ATTNSCOPE_CACHE, else the user cache folder, /attnscope/s3/<bucket>/<prefix>)
// and returns that folder. Objects already cached with the same size are not
// downloaded again. writer is "" to read only: the run is staged as published, in
// the readers' cache folder (readCacheDir); otherwise Stage checks that the
// credentials may write, claims the writer name (Claim: stale temporary objects of
// that name are deleted) and returns a push function that uploads what the command
// changed (PushRun: atomic objects, markers last).
//
// Until a push succeeds, a marker file <cache>.push-pending beside the cache folder
// says that the cache holds work not yet in the bucket: a rerun on the same machine
// after a writer was killed before run.json went up keeps that cache (and skips the
// samples it finished) instead of taking it for the stale cache of a deleted run. On
// another machine the rerun finds no run.json in the bucket and starts over; the
// objects it writes are the same.
func Stage(ctx context.Context, arg string, writer string) (local string, push func(context.Context) error, err error) {
	none := func(context.Context) error { return nil }
	if !IsS3(arg) {
		return arg, none, nil
	}
	b, err := OpenS3(ctx, arg)
	if err != nil {
		return "", nil, err
	}
	write := writer != ""
	if write {
		if err := b.CheckWritable(ctx); err != nil {
			return "", nil, err
		}
		if _, err := b.Claim(ctx, writer); err != nil {
			return "", nil, err
		}
	}
	if !write {
		if local, err = readCacheDir(b); err != nil {
			return "", nil, err
		}
		if _, err := b.pullSkipping(ctx, local, func(string) bool { return false }); err != nil {
			return "", nil, err
		}
		return local, none, nil
	}
	if local, err = cacheDir(b); err != nil {
		return "", nil, err
	}
	keys, err := b.List(ctx)
	if err != nil {
		return "", nil, err
	}
	pending := local + ".push-pending"
	if slices.Contains(keys, RunFile) {
		if _, err := b.PullRun(ctx, local); err != nil {
			return "", nil, err
		}
	} else if _, err := os.Stat(pending); err == nil {
		// An earlier writer on this machine was killed before its push finished.
	} else if err := os.RemoveAll(local); err != nil { // a stale cache of a deleted run
		return "", nil, err
	}
	if err := os.MkdirAll(filepath.Dir(pending), 0o755); err != nil {
		return "", nil, err
	}
	if err := os.WriteFile(pending, []byte(writer+"\n"), 0o644); err != nil {
		return "", nil, err
	}
	return local, func(ctx context.Context) error {
		if _, err := os.Stat(local); errors.Is(err, fs.ErrNotExist) {
			return os.Remove(pending) // the command wrote nothing
		}
		if _, err := b.PushRun(ctx, local); err != nil {
			return err
		}
		return os.Remove(pending)
	}, nil
}
