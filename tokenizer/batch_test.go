package tokenizer

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/attnscope/attnscope/internal/refdata"
)

// TestEncodeBatch: the parallel batch equals one-by-one encoding, BatchLongest padding
// pads to the longest, invalid UTF-8 and a cancelled context are errors.
func TestEncodeBatch(t *testing.T) {
	tk, err := Load(refdata.Path(t, "tokenizers", "bert-wordpiece"))
	if err != nil {
		t.Fatal(err)
	}
	texts := []string{"def f(x):", "", "return x + 1  # café", "東京 🙂", "a"}
	for i := 0; i < 50; i++ {
		texts = append(texts, texts[i%5]+" tail")
	}
	got, err := tk.EncodeBatch(context.Background(), texts, true)
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range texts {
		want, err := tk.Encode(s, true)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got[i], want) {
			t.Fatalf("text %d: batch %v, single %v", i, got[i].IDs, want.IDs)
		}
	}

	pt := *tk
	pt.SetPadding(&Padding{PadID: 0, PadToken: "[PAD]", Direction: "Right"})
	padded, err := pt.EncodeBatch(context.Background(), texts[:5], true)
	if err != nil {
		t.Fatal(err)
	}
	longest := 0
	for _, e := range got[:5] {
		longest = max(longest, e.Len())
	}
	for i, e := range padded {
		if e.Len() != longest {
			t.Errorf("text %d: padded to %d, want %d", i, e.Len(), longest)
		}
		n := got[i].Len()
		for k := n; k < e.Len(); k++ {
			if e.IDs[k] != 0 || e.AttentionMask[k] != 0 || e.SpecialTokensMask[k] != 1 || e.SequenceIDs[k] != -1 {
				t.Errorf("text %d position %d: not a padding token: id %d mask %d", i, k, e.IDs[k], e.AttentionMask[k])
			}
		}
	}

	if _, err := tk.EncodeBatch(context.Background(), []string{"ok", "bad \xff"}, true); !errors.Is(err, ErrInvalidUTF8) {
		t.Errorf("invalid UTF-8: err = %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := tk.EncodeBatch(ctx, texts, true); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled context: err = %v", err)
	}
}
