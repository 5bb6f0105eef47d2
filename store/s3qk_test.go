package store_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/attnscope/attnscope/internal/s3test"
	"github.com/attnscope/attnscope/internal/testutil"
	"github.com/attnscope/attnscope/store"
	"github.com/attnscope/attnscope/store/storetest"
)

// writeQKRun writes a run of one --store qk sample "s" (grouped-query attention:
// heads query heads over kvHeads key heads, causal) into dir/qk, its log-sum-exps
// those of the float64 softmax of the scores q·k/√hd.
func writeQKRun(t testing.TB, dir string, layers, heads, kvHeads, n, hd int) string {
	t.Helper()
	rng := rand.New(rand.NewPCG(3, 5))
	randn := func(k int) []float32 {
		out := make([]float32, k)
		for i := range out {
			out[i] = float32(rng.NormFloat64())
		}
		return out
	}
	ls := make([]storetest.QKLayer, layers)
	for l := range ls {
		q, k := randn(heads*n*hd), randn(kvHeads*n*hd)
		lse := make([]float64, heads*n)
		for h := range heads {
			kh := h / (heads / kvHeads)
			for i := range n {
				s := make([]float64, i+1)
				m := math.Inf(-1)
				for j := range i + 1 {
					for d := range hd {
						s[j] += float64(q[(h*n+i)*hd+d]) * float64(k[(kh*n+j)*hd+d])
					}
					s[j] /= math.Sqrt(float64(hd))
					m = max(m, s[j])
				}
				sum := 0.0
				for _, v := range s {
					sum += math.Exp(v - m)
				}
				lse[h*n+i] = m + math.Log(sum)
			}
		}
		ls[l] = storetest.QKLayer{Q: q, K: k, LSE: lse}
	}
	p := filepath.Join(dir, "qk")
	storetest.WriteQKRun(t, p, heads, kvHeads, n, hd, ls)
	return p
}

// A --store qk run read from S3 (OpenRead) leaves its qk.safetensors in the bucket:
// opening it reads the header, a tile then of its layer only the blocks of 64 rows of its
// head's queries and log-sum-exps and of 64 keys of its kv head that it covers,
// each once; the tiles, row blocks and exact rows equal the local run's bit for bit.
func TestS3QKTilesRanged(t *testing.T) {
	srv := s3test.StartEnv(t)
	ctx := context.Background()
	const layers, heads, kvHeads, n, hd = 3, 4, 2, 600, 16
	local := writeQKRun(t, t.TempDir(), layers, heads, kvHeads, n, hd)
	b, err := store.OpenS3(ctx, "s3://runs/qk")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.PushRun(ctx, local); err != nil {
		t.Fatal(err)
	}
	before := srv.Sent.Load()
	rr, err := store.OpenRead(ctx, "s3://runs/qk")
	if err != nil {
		t.Fatal(err)
	}
	staged := srv.Sent.Load() - before
	qkFile, _ := os.ReadFile(filepath.Join(local, "samples", "s", store.QKFile))
	if _, err := os.Stat(filepath.Join(rr.Dir(), "samples", "s", store.QKFile)); !os.IsNotExist(err) {
		t.Fatalf("OpenRead downloaded qk.safetensors (%v)", err)
	}
	if staged >= int64(len(qkFile))/10 {
		t.Errorf("OpenRead fetched %d bytes; the qk file alone is %d", staged, len(qkFile))
	}
	lr := testutil.Must(store.Open(local))
	lq := testutil.Must(lr.OpenQK("s"))
	before = srv.Sent.Load()
	rq := testutil.Must(rr.OpenQK("s"))
	hlen := int64(binary.LittleEndian.Uint64(qkFile[:8]))
	if sent := srv.Sent.Load() - before; sent != 8+hlen {
		t.Errorf("opening the qk file fetched %d bytes, its header is %d", sent, 8+hlen)
	}
	block := func(a, b int) int64 { return int64((b+63)/64*64 - a/64*64) } // rows in the blocks of [a, b)
	total := int64(0)
	for i, c := range []struct {
		l, h, r0, r1, c0, c1 int
		new                  int64 // bytes of blocks not read before
	}{
		{1, 3, 300, 340, 100, 160, block(300, 340)*(hd*4+8) + block(100, 160)*hd*4},
		{1, 3, 310, 330, 120, 150, 0},                            // inside the blocks read
		{1, 2, 300, 340, 100, 160, block(300, 340) * (hd*4 + 8)}, // head 2 shares kv head 1's keys
		{2, 0, 0, 10, 0, 10, 64 * (hd*4 + 8 + hd*4)},
	} {
		before := srv.Sent.Load()
		got, err := rq.Tile(c.l, c.h, c.r0, c.r1, c.c0, c.c1)
		if err != nil {
			t.Fatal(err)
		}
		sent := srv.Sent.Load() - before
		want := testutil.Must(lq.Tile(c.l, c.h, c.r0, c.r1, c.c0, c.c1))
		if !sameBits(got.Data, want.Data) {
			t.Fatalf("tile %d: the S3 run's tile differs from the local run's", i)
		}
		if sent != c.new {
			t.Errorf("tile %+v: the S3 server sent %d bytes, %d expected (the qk file is %d)", c, sent, c.new, len(qkFile))
		}
		total += sent
	}
	if total >= int64(len(qkFile))/10 {
		t.Errorf("four tiles fetched %d bytes of a %d-byte qk file", total, len(qkFile))
	}
	t.Logf("four tiles: %d bytes from S3 (qk file %d bytes)", total, len(qkFile))
	// Tiles of one layer asked at once, each reading its own blocks, equal the local ones.
	cq := testutil.Must(rr.OpenQK("s"))
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			h, r0, c0 := g%heads, 70*g, 50*g
			got, err := cq.Tile(0, h, r0, r0+90, c0, c0+130)
			if err != nil {
				t.Error(err)
				return
			}
			want, err := testutil.Must(lr.OpenQK("s")).Tile(0, h, r0, r0+90, c0, c0+130)
			if err != nil || !sameBits(got.Data, want.Data) {
				t.Errorf("concurrent tile %d differs from the local run's", g)
			}
		})
	}
	wg.Wait()
	// Row blocks of every head and exact rows equal the local ones too.
	if !sameBits(testutil.Must(rq.Rows(0, 130, 200)).Data, testutil.Must(lq.Rows(0, 130, 200)).Data) {
		t.Error("rows [130, 200) of layer 0 read from S3 differ from the local run's")
	}
	if !sameBits(testutil.Must(rq.ExactRow(2, 1, 599)), testutil.Must(lq.ExactRow(2, 1, 599))) {
		t.Error("exact row 599 of layer 2 head 1 read from S3 differs from the local run's")
	}
}

func sameBits(a, b []float64) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if math.Float64bits(a[i]) != math.Float64bits(b[i]) {
			return false
		}
	}
	return true
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(fmt.Sprint(err))
	}
	return v
}
