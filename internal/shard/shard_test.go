package shard

import (
	"fmt"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

func TestParse(t *testing.T) {
	for _, ok := range []struct {
		in   string
		i, n int
	}{{"0/1", 0, 1}, {"3/4", 3, 4}, {" 2/10 ", 2, 10}} {
		s, err := Parse(ok.in)
		if err != nil || s.Index != ok.i || s.Count != ok.n {
			t.Errorf("Parse(%q) = %v, %v; want %d/%d", ok.in, s, err, ok.i, ok.n)
		}
	}
	for _, bad := range []struct{ in, want string }{
		{"5/4", "between 0 and 3"},
		{"4/4", "between 0 and 3"},
		{"-1/4", "between 0 and 3"},
		{"0/0", "at least 1"},
		{"1", "i/n expected"},
		{"a/b", "whole numbers"},
		{"", "i/n expected"},
	} {
		_, err := Parse(bad.in)
		if err == nil || !strings.Contains(err.Error(), bad.want) {
			t.Errorf("Parse(%q) error %v, want one containing %q", bad.in, err, bad.want)
		}
	}
}

// Every id lands in exactly one shard, the split does not depend on the order or the
// other ids, and it is balanced on average.
func TestSplitPartitionsAndIsStable(t *testing.T) {
	var ids []string
	for i := range 1000 {
		ids = append(ids, fmt.Sprintf("sample%04d.py", i))
	}
	const n = 4
	counts := make([]int, n)
	for _, id := range ids {
		in := 0
		for i := range n {
			if (Shard{i, n}).Has(id) {
				in++
				counts[i]++
			}
		}
		if in != 1 {
			t.Fatalf("%s is in %d shards", id, in)
		}
	}
	for i, c := range counts {
		if c < 200 || c > 300 { // 250 ± 6 standard deviations
			t.Errorf("shard %d/%d holds %d of 1000 ids", i, n, c)
		}
	}
	// Reversed list, and a list with more ids: each id keeps its shard.
	rev := make([]string, len(ids))
	for i, id := range ids {
		rev[len(ids)-1-i] = id
	}
	s := Shard{1, n}
	a := s.Select(ids)
	b := s.Select(append(rev, "extra1", "extra2"))
	inB := map[string]bool{}
	for _, id := range b {
		inB[id] = true
	}
	for _, id := range a {
		if !inB[id] {
			t.Errorf("%s left shard 1/4 when the list changed", id)
		}
	}
	// Pinned values: the split must never change between versions (runs in progress
	// on a cluster are resumed by a newer binary).
	for _, id := range []string{"text0", "a", "followup_3.py_2", ""} {
		if got := Of(id, 4); got != pinned(id) {
			t.Errorf("Of(%q, 4) = %d, FNV-1a says %d", id, got, pinned(id))
		}
	}
	if !All.Has("anything") || All.Sharded() {
		t.Error("All must hold every sample")
	}
}

// pinned is FNV-1a 64 computed independently (offset basis and prime of the FNV
// reference) mod 4.
func pinned(s string) int {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return int(h % 4)
}

func TestFlag(t *testing.T) {
	var s Shard
	fs := pflag.NewFlagSet("x", pflag.ContinueOnError)
	AddFlag(fs, &s)
	if err := fs.Parse([]string{"--shard", "2/3"}); err != nil || s != (Shard{2, 3}) {
		t.Fatalf("parse 2/3: %v %v", s, err)
	}
	err := fs.Parse([]string{"--shard", "5/4"})
	if err == nil || !strings.Contains(err.Error(), "between 0 and 3") {
		t.Fatalf("--shard 5/4: %v", err)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{"0/1", "5/4", "1/2", "x", "/", "9999999999999999999/1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		s, err := Parse(in)
		if err != nil {
			return
		}
		if s.Check() != nil || !s.Sharded() {
			t.Fatalf("Parse(%q) accepted an invalid shard %v", in, s)
		}
		if back, err := Parse(s.String()); err != nil || back != s {
			t.Fatalf("round trip of %q: %v %v", in, back, err)
		}
	})
}
