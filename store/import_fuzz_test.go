package store

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"unicode/utf8"

	"github.com/attnscope/attnscope/checkpoint"
)

// FuzzImportNpy feeds arbitrary bytes as an .npy file to Import: it must fail
// cleanly or write a sample whose attention reads back with the header's shape.
func FuzzImportNpy(f *testing.F) {
	good := checkpoint.NpyHeaderBytes(checkpoint.NpyFloat32, []int{1, 2, 2})
	f.Add(append(good, make([]byte, 16)...))
	f.Add(checkpoint.NpyHeaderBytes(checkpoint.NpyFloat64, []int{1, 1, 1, 1}))
	f.Add(checkpoint.NpyHeaderBytes(checkpoint.NpyFloat16, []int{2, 3, 3}))
	f.Add([]byte("\x93NUMPY\x01\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		dir := t.TempDir()
		p := filepath.Join(dir, "x.npy")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		out := filepath.Join(dir, "run")
		if _, err := Import(context.Background(), out, []string{p}, ImportOptions{}); err != nil {
			return
		}
		r, err := Open(out)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := r.Attention("x"); err != nil {
			t.Fatalf("imported sample does not read back: %v", err)
		}
	})
}

// FuzzByteLevelOffsets checks that decoded offsets stay inside the decoded text and
// never go backwards.
func FuzzByteLevelOffsets(f *testing.F) {
	f.Add("def", "Ġcaf", "Ã")
	f.Add("Ã", "©", "Ċ")
	f.Add("a", "", "b")
	f.Fuzz(func(t *testing.T, a, b, c string) {
		offs, text, ok := byteLevelOffsets([]string{a, b, c})
		if !ok {
			return
		}
		n := utf8.RuneCountInString(text)
		prev := 0
		for i, o := range offs {
			if o[0] < 0 || o[0] > o[1] || o[1] > n || o[0] < prev-1 {
				t.Fatalf("token %d offsets %v in a %d-character text (previous start %d)", i, o, n, prev)
			}
			prev = o[0]
		}
	})
}
