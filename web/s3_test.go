package web

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"

	"github.com/attnscope/attnscope/capture/capturetest"
	"github.com/attnscope/attnscope/internal/s3test"
	"github.com/attnscope/attnscope/internal/testutil"
	"github.com/attnscope/attnscope/store"
)

// A --store qk sample of a run in object storage (store.OpenRead) is served
// without downloading its qk.safetensors: the matrix view's tile of one head
// reads the file's header and, of that layer, the head's queries and
// log-sum-exps and its kv head's keys, by ranged requests; the tiles equal the
// local run's byte for byte, and a second head on the same kv head reads only
// its own queries and log-sum-exps.
func TestS3QKSampleTiles(t *testing.T) {
	srv := s3test.StartEnv(t)
	ctx := context.Background()
	local := filepath.Join(t.TempDir(), "qk")
	capturetest.Capture(t, capturetest.TinyLlama(t, 500), local, capturetest.Code(40), true)
	b, err := store.OpenS3(ctx, "s3://runs/qk")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.PushRun(ctx, local); err != nil {
		t.Fatal(err)
	}
	rr, err := store.OpenRead(ctx, "s3://runs/qk")
	if err != nil {
		t.Fatal(err)
	}
	lr, err := store.Open(local)
	if err != nil {
		t.Fatal(err)
	}
	base := map[string]string{}
	for name, r := range map[string]*store.Run{"local": lr, "s3": rr} {
		s, err := NewRuns([]*store.Run{r}, Options{Log: log.New(io.Discard, "", 0)})
		if err != nil {
			t.Fatal(err)
		}
		h := httptest.NewServer(s)
		defer s.Close() // after the HTTP server: waits for the tile cache writes
		defer h.Close()
		base[name] = h.URL
	}
	info := testutil.Must(lr.Sample("s")).QK
	if info == nil || info.KVHeads >= info.Heads {
		t.Fatalf("the sample's qk info %+v: grouped-query attention expected", info)
	}
	qkFile, _ := os.ReadFile(filepath.Join(local, "samples", "s", store.QKFile))
	hlen := int64(binary.LittleEndian.Uint64(qkFile[:8]))
	n, hd := int64(info.Tokens), int64(info.HeadDim)
	rows, keys := n*hd*4+2*n*4, n*hd*4 // one head's queries and log-sum-exps (lse, lse_lo); one kv head's keys
	for i, c := range []struct {
		url  string
		sent int64
	}{
		{"/api/runs/qk/samples/s/tile/1/0/max/0/0/0", 8 + hlen + rows + keys},
		{"/api/runs/qk/samples/s/tile/1/1/mean/0/0/0", rows}, // head 1 shares head 0's kv head
	} {
		want := testutil.Get(t, base["local"]+c.url)
		before := srv.Sent.Load()
		got := testutil.Get(t, base["s3"]+c.url)
		sent := srv.Sent.Load() - before
		if !bytes.Equal(got, want) {
			t.Fatalf("GET %s: the S3 run's tile differs from the local run's", c.url)
		}
		if sent != c.sent {
			t.Errorf("GET %s: the S3 server sent %d bytes, %d expected (the qk file is %d)", c.url, sent, c.sent, len(qkFile))
		}
		if i == 0 {
			t.Logf("GET %s: %d bytes from S3 (qk file %d bytes, %d tokens)", c.url, sent, len(qkFile), n)
		}
	}
	if _, err := os.Stat(filepath.Join(rr.Dir(), "samples", "s", store.QKFile)); !os.IsNotExist(err) {
		t.Errorf("the qk file was downloaded (%v)", err)
	}
}
