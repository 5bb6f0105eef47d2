package corpus

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"
)

// Oracle 38 of the Text_to_Python test oracles.
func TestTokenizeOracle(t *testing.T) {
	got := strings.Join(Tokenize("def add(a, b):\n\treturn a+b  # 2nd"), " ")
	want := "def add ( a , b ) : NEWLINE INDENT return a + b # 2 nd"
	if got != want {
		t.Fatalf("Tokenize = %q, want %q", got, want)
	}
	// Python's \s includes U+001C and NBSP; identifiers are ASCII only.
	if got := Tokenize("  x\u00a0é1\x1cy  "); !slices.Equal(got, []string{"x", "é", "1", "y"}) {
		t.Fatalf("Tokenize unicode = %q", got)
	}
	if got := Tokenize(" \n\t "); len(got) != 0 {
		t.Fatalf("blank text gives %q", got)
	}
}

// Oracle 39: specials 0–3, a word seen once is <UNK>, decode stops at EOS.
func TestVocabOracle(t *testing.T) {
	v := BuildVocab([][]string{{"a", "b", "a", "c"}, {"b", "b", "d", "c", "e", "f", "e"}}, FreqThreshold)
	if !slices.Equal(v.Itos[:4], Specials[:]) {
		t.Fatalf("specials %v", v.Itos[:4])
	}
	// b 3, a 2, c 2, e 2 (ties in first-occurrence order); d, f once.
	if want := []string{"b", "a", "c", "e"}; !slices.Equal(v.Itos[4:], want) {
		t.Fatalf("words %v, want %v", v.Itos[4:], want)
	}
	if v.ID("d") != UNK || v.ID("a") != 5 {
		t.Fatalf("ID(d)=%d ID(a)=%d", v.ID("d"), v.ID("a"))
	}
	itos := append(append([]string{}, Specials[:]...), "w4", "w5", "w6", "w7", "w8", "w9")
	v2, err := NewVocab(itos)
	if err != nil {
		t.Fatal(err)
	}
	if got := v2.Decode([]int{1, 7, 0, 2, 9}); !slices.Equal(got, []string{"w7"}) {
		t.Fatalf("decode = %v", got)
	}
	if got := v2.Decode([]int{99, 3}); !slices.Equal(got, []string{"<UNK>", "<UNK>"}) {
		t.Fatalf("decode unknown = %v", got)
	}
	if got := v2.Encode([]string{"w4", "zz", "w5"}, 2); !slices.Equal(got, []int{SOS, 4, UNK, EOS}) {
		t.Fatalf("encode = %v", got)
	}
	p := filepath.Join(t.TempDir(), "v.json")
	if err := v2.Save(p); err != nil {
		t.Fatal(err)
	}
	back, err := LoadVocab(p)
	if err != nil || !slices.Equal(back.Itos, v2.Itos) {
		t.Fatalf("round trip %v %v", back, err)
	}
}

func TestReadJSONL(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "c.jsonl")
	os.WriteFile(p, []byte(`{"func_documentation_string":"Add.","func_code_string":"def f(): pass"}
{"docstring":"  ","code":"x"}

{"docstring":"Doc.","whole_func_string":"def g(): return 1","extra":3}
`), 0o644)
	got, err := ReadFile(p, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Docstring != "Add." || got[1].Code != "def g(): return 1" {
		t.Fatalf("got %+v", got)
	}
	if got, _ := ReadFile(p, 1); len(got) != 1 {
		t.Fatalf("limit 1 gives %d", len(got))
	}
	for name, body := range map[string]string{
		"empty.jsonl":   "\n\n",
		"notjson.jsonl": "{\"docstring\": \"a\", \"code\": \"b\"}\nnot json\n",
		"nocode.jsonl":  "{\"docstring\": \"a\"}\n",
		"number.jsonl":  "{\"docstring\": 3, \"code\": \"b\"}\n",
	} {
		q := filepath.Join(dir, name)
		os.WriteFile(q, []byte(body), 0o644)
		_, err := ReadFile(q, 0)
		if err == nil || !strings.Contains(err.Error(), q) {
			t.Errorf("%s: error %v, want one naming the file", name, err)
		}
	}
	if _, err := ReadFile(filepath.Join(dir, "x.csv"), 0); err == nil {
		t.Error("a .csv file was accepted")
	}
}

func TestReadParquet(t *testing.T) {
	type row struct {
		Repo string `parquet:"repo"`
		Doc  string `parquet:"docstring"`
		Code string `parquet:"code"`
	}
	p := filepath.Join(t.TempDir(), "c.parquet")
	f, _ := os.Create(p)
	w := parquet.NewGenericWriter[row](f)
	if _, err := w.Write([]row{{"r", "Add two.", "def add(a, b): return a + b"}, {"r", "", "x"}, {"r", "Sub.", "def sub(a): return -a"}}); err != nil {
		t.Fatal(err)
	}
	w.Close()
	f.Close()
	got, err := ReadFile(p, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[1].Docstring != "Sub." || got[0].Code != "def add(a, b): return a + b" {
		t.Fatalf("got %+v", got)
	}
	type other struct {
		A string `parquet:"a"`
	}
	q := filepath.Join(t.TempDir(), "o.parquet")
	f, _ = os.Create(q)
	w2 := parquet.NewGenericWriter[other](f)
	w2.Write([]other{{"x"}})
	w2.Close()
	f.Close()
	if _, err := ReadFile(q, 0); err == nil || !strings.Contains(err.Error(), "column") {
		t.Fatalf("parquet without the columns: %v", err)
	}
}

func TestBuild(t *testing.T) {
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.py"), []byte(`import os

def add(a, b):
    """Add two numbers.

    Returns the sum.
    """
    return a + b

class K:
    def m(self):
        'Method doc.'
        x = 1
        return x

    def only(self):
        """Nothing else."""

def nodoc():
    return 1
`), 0o644)
	os.WriteFile(filepath.Join(dir, "bad.py"), []byte("def f(:\n  print 'x'\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "latin1.py"), []byte("x = '\xe9'\n"), 0o644)
	os.MkdirAll(filepath.Join(dir, "sub"), 0o755)
	os.WriteFile(filepath.Join(dir, "sub", "dup.py"), []byte("def add(a, b):\n    \"\"\"Add two numbers.\n\n    Returns the sum.\n    \"\"\"\n    return a + b\n"), 0o644)
	pairs, st, err := Build(context.Background(), []string{dir}, BuildOptions{Seed: 1})
	if err != nil {
		t.Fatal(err)
	}
	if st.Files != 4 || st.Unparsable != 2 || st.Functions != 5 || st.Documented != 4 || st.BodyOnly != 1 || st.Duplicates != 1 || st.Pairs != 2 {
		t.Fatalf("stats %+v", st)
	}
	byDoc := map[string]Pair{}
	for _, p := range pairs {
		byDoc[p.Docstring] = p
	}
	add, ok := byDoc["Add two numbers.\n\nReturns the sum."]
	if !ok || add.Code != "def add(a, b):\n    return a + b" || !strings.HasSuffix(add.Origin, "a.py:add") {
		t.Fatalf("add pair %+v (all %+v)", add, pairs)
	}
	m := byDoc["Method doc."]
	if m.Code != "def m(self):\n    x = 1\n    return x" || !strings.HasSuffix(m.Origin, ":K.m") {
		t.Fatalf("method pair %+v", m)
	}
	again, _, _ := Build(context.Background(), []string{dir}, BuildOptions{Seed: 1})
	if !slices.Equal(again, pairs) {
		t.Fatal("Build is not deterministic")
	}
	_, st2, _ := Build(context.Background(), []string{dir}, BuildOptions{MaxFiles: 2})
	if st2.Files != 2 {
		t.Fatalf("MaxFiles 2 read %d files", st2.Files)
	}
	if _, _, err := Build(context.Background(), []string{filepath.Join(dir, "missing")}, BuildOptions{}); err == nil {
		t.Fatal("a missing folder was accepted")
	}
}

func TestSplit(t *testing.T) {
	ps := make([]Pair, 7)
	for i := range ps {
		ps[i].Code = string(rune('a' + i))
	}
	s := Split(ps, 4, 2, 2)
	if len(s.Train) != 4 || len(s.Val) != 2 || len(s.Test) != 1 || s.Test[0].Code != "g" {
		t.Fatalf("split %+v", s)
	}
}

func FuzzReadJSONL(f *testing.F) {
	f.Add([]byte(`{"docstring":"a","code":"b"}` + "\n"))
	f.Add([]byte("{}\n[1]\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		p := filepath.Join(t.TempDir(), "f.jsonl")
		os.WriteFile(p, b, 0o644)
		pairs, err := ReadFile(p, 0)
		if err == nil {
			for _, x := range pairs {
				if strings.TrimSpace(x.Docstring) == "" || strings.TrimSpace(x.Code) == "" {
					t.Fatalf("blank pair kept: %+v", x)
				}
			}
		}
	})
}
