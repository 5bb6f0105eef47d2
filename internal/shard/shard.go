// Package shard splits the samples of a long command (capture, derive, compare,
// evaluate, diagnose) among n independent jobs: `--shard i/n` (0 ≤ i < n) keeps the
// samples whose id hashes to i.
//
// The split hashes each sample id with 64-bit FNV-1a and takes the remainder modulo n,
// so a sample's shard depends on its id and n only: it is the same on every machine,
// the same when the input list is reordered, and adding or removing inputs moves no
// other sample to another shard (a split by position would). Shards are therefore only
// balanced on average (binomial: for 100 samples over 4 shards, 25 ± 4 each).
package shard

import (
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"

	"github.com/spf13/pflag"
)

// Shard is the i-th of n shards. The zero value (Count 0) means no sharding: every
// sample belongs to it.
type Shard struct {
	Index, Count int
}

// All is the shard that holds every sample.
var All = Shard{}

// Parse reads "i/n" with 0 ≤ i < n.
func Parse(s string) (Shard, error) {
	a, b, ok := strings.Cut(strings.TrimSpace(s), "/")
	if !ok {
		return Shard{}, fmt.Errorf("--shard %q: i/n expected (shard i of n, counted from 0), e.g. 0/4", s)
	}
	i, err1 := strconv.Atoi(a)
	n, err2 := strconv.Atoi(b)
	if err1 != nil || err2 != nil {
		return Shard{}, fmt.Errorf("--shard %q: i/n with whole numbers expected, e.g. 0/4", s)
	}
	if n < 1 {
		return Shard{}, fmt.Errorf("--shard %q: the number of shards must be at least 1", s)
	}
	if i < 0 || i >= n {
		return Shard{}, fmt.Errorf("--shard %q: the shard index must be between 0 and %d (shards are counted from 0)", s, n-1)
	}
	return Shard{Index: i, Count: n}, nil
}

// Sharded reports whether s splits the samples (Count > 1 or an explicit 0/1).
func (s Shard) Sharded() bool { return s.Count > 0 }

// String is "i/n", or "" for All.
func (s Shard) String() string {
	if !s.Sharded() {
		return ""
	}
	return fmt.Sprintf("%d/%d", s.Index, s.Count)
}

// Name is a file-name form, "shard-<i>-of-<n>".
func (s Shard) Name() string {
	return fmt.Sprintf("shard-%d-of-%d", s.Index, s.Count)
}

// Of returns the shard index (0..n-1) of sample id among n shards.
func Of(id string, n int) int {
	if n <= 1 {
		return 0
	}
	h := fnv.New64a()
	h.Write([]byte(id))
	return int(h.Sum64() % uint64(n))
}

// Has reports whether sample id belongs to s.
func (s Shard) Has(id string) bool {
	return !s.Sharded() || Of(id, s.Count) == s.Index
}

// Select returns the ids of s, in their order.
func (s Shard) Select(ids []string) []string {
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if s.Has(id) {
			out = append(out, id)
		}
	}
	return out
}

// Check reports whether s is valid (All, or 0 ≤ Index < Count).
func (s Shard) Check() error {
	if s.Count == 0 && s.Index == 0 {
		return nil
	}
	if s.Count < 1 || s.Index < 0 || s.Index >= s.Count {
		return errors.New("shard " + strconv.Itoa(s.Index) + "/" + strconv.Itoa(s.Count) + ": 0 ≤ i < n expected")
	}
	return nil
}

// Flag is a pflag.Value for --shard i/n.
type Flag struct{ S *Shard }

func (f Flag) String() string {
	if f.S == nil {
		return ""
	}
	return f.S.String()
}

// Set parses i/n.
func (f Flag) Set(v string) error {
	s, err := Parse(v)
	if err != nil {
		return &FlagError{err}
	}
	*f.S = s
	return nil
}

// FlagError is a --shard value Set refused; its message is one whole sentence
// naming the flag and value, for the command line to print as it is (pflag's
// "invalid argument … for … flag:" prefix left out).
type FlagError struct{ Err error }

func (e *FlagError) Error() string { return e.Err.Error() }

// Type names the value in help texts.
func (Flag) Type() string { return "i/n" }

// AddFlag declares --shard on fs, storing into s; one line in each command.
func AddFlag(fs *pflag.FlagSet, s *Shard) {
	fs.Var(Flag{S: s}, "shard", "process only shard i of n (0 ≤ i < n): the samples whose id hashes to i (FNV-1a mod n); merge the shards' outputs with attnscope merge")
}
