package tasks

import (
	"os"
	"path/filepath"
	"testing"
)

// FuzzLoadCharTokenizer: a downloaded tokenizer.json gives a tokenizer or an error.
func FuzzLoadCharTokenizer(f *testing.F) {
	js, err := NewCharTokenizer("ab+=").TokenizerJSON()
	if err != nil {
		f.Fatal(err)
	}
	f.Add(js)
	f.Add([]byte(`{"model":{"type":"BPE","vocab":{"<pad>":0,"<bos>":1,"<eos>":2,"<unk>":3,"a":7}}}`))
	f.Add([]byte(`{"model":{"type":"BPE","vocab":{"<pad>":0,"<bos>":0}}}`))
	f.Add([]byte(`[]`))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(dir, "tokenizer.json")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		tok, err := LoadCharTokenizer(p)
		if err == nil {
			_ = tok.Decode(tok.Encode("1+1=2", true))
		}
	})
}

// FuzzNew: generator parameters from a config never panic a generator.
func FuzzNew(f *testing.F) {
	f.Add("LongAdditionGenerator", "1,3", int64(0), 2)
	f.Add("FlipFlopGenerator", "${as_tuple:1,30}", int64(5), 3)
	f.Add("ValueAssignmentGenerator", "(2,4)", int64(-1), 1)
	f.Add("SuccessorGenerator", "0,0", int64(9), 4)
	f.Add("LongMultiplicationGenerator", "1,2", int64(1), 2)
	f.Add("StringReversalGenerator", "1,1", int64(7), 3)
	f.Fuzz(func(t *testing.T, name, length string, seed int64, n int) {
		g, err := New(name, map[string]any{"seed": seed, "length": length}, fakeTok{})
		if err != nil {
			return
		}
		r, ok := ParseRange(length)
		if ok && (r.Hi > 40 || r.Lo < -1000) {
			return // keep samples small
		}
		for i := 0; i < n%4; i++ {
			s, err := g.Next()
			if err != nil {
				return
			}
			if s.Labels != nil && s.Labels.N != len(s.InputIDs) {
				t.Fatalf("%s: labels %d for %d inputs", name, s.Labels.N, len(s.InputIDs))
			}
		}
	})
}
