package qklength

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/attnscope/attnscope/internal/refdata"
)

// TestRunSmall runs the sweep in process at 128 and 256 tokens with a disk
// limit (4 MiB) that only the full 256-token capture's estimate exceeds: every cell
// measured writes what capture.EstimateMemory predicts within 10%, the qk run
// writes less than the full one, and the skipped cell is reported.
func TestRunSmall(t *testing.T) {
	var out bytes.Buffer
	o := Options{
		Lengths: []int{128, 256}, Stores: []string{"full", "qk"}, Shape: DefaultShape,
		Tokenizer: refdata.Path(t, "models", "tiny-llama"), Work: t.TempDir(),
		MaxDisk: 4 << 20, Child: RunCell,
	}
	cells, err := Run(context.Background(), &out, o)
	if err != nil {
		t.Fatal(err)
	}
	if len(cells) != 4 {
		t.Fatalf("%d cells: %+v", len(cells), cells)
	}
	byKey := map[string]Cell{}
	for _, c := range cells {
		byKey[c.Store+string(rune('0'+c.Tokens/128))] = c
		if c.Skipped != "" {
			continue
		}
		if c.Disk <= 0 || float64(c.Disk) < 0.9*float64(c.EstDisk) || float64(c.Disk) > 1.1*float64(c.EstDisk) {
			t.Errorf("%s at %d tokens wrote %d bytes, estimated %d", c.Store, c.Tokens, c.Disk, c.EstDisk)
		}
	}
	if full, qk := byKey["full1"], byKey["qk1"]; full.Skipped != "" || qk.Skipped != "" || qk.Disk >= full.Disk {
		t.Errorf("128 tokens: full %+v, qk %+v", full, qk)
	}
	if c := byKey["full2"]; c.Skipped == "" || !strings.Contains(out.String(), "skipped") {
		t.Errorf("full at 256 tokens not skipped: %+v\n%s", c, out.String())
	}
	t.Log("\n" + out.String())
}
