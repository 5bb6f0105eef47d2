package compare

import (
	"encoding/csv"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
)

// baseCache keeps the base-behaviour tables read from CSV files, by path.
type baseCache struct {
	mu sync.Mutex
	m  map[string]*baseTable
}

// baseTable is a base reading behaviour: by relative distance (byDist[d−minD] is
// the normalised probability of a jump of distance d) or, in absolute-position
// mode, one dense matrix per total_tokens.
type baseTable struct {
	minD   int
	byDist []float64
	abs    map[int][][]float64 // total_tokens → [current][target]
	sizes  []int
}

func (c *baseCache) get(path string, kw Kwargs) (*baseTable, error) {
	key := path + "\x00" + fmt.Sprint(kw.bool("modelling_based_on_abs_position"), kw.string("col_name_probability"), kw.string("col_name_distance"))
	c.mu.Lock()
	defer c.mu.Unlock()
	if t, ok := c.m[key]; ok {
		return t, nil
	}
	t, err := readBase(path, kw)
	if err != nil {
		return nil, err
	}
	if c.m == nil {
		c.m = map[string]*baseTable{}
	}
	c.m[key] = t
	return t, nil
}

func readBase(path string, kw Kwargs) (*baseTable, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("remove_base_human_behavior: %w", err)
	}
	defer f.Close()
	r := csv.NewReader(f)
	header, err := r.Read()
	if err != nil {
		return nil, fmt.Errorf("remove_base_human_behavior: %s: no header row: %v", path, err)
	}
	col := func(name string) (int, error) {
		i := slices.Index(header, name)
		if i < 0 {
			return 0, fmt.Errorf("remove_base_human_behavior: %s: no column %q (columns: %v)", path, name, header)
		}
		return i, nil
	}
	probCol, err := col(kw.string("col_name_probability"))
	if err != nil {
		return nil, err
	}
	abs := kw.bool("modelling_based_on_abs_position")
	var cols []int
	if abs {
		for _, n := range []string{"current_token_position", "target_position", "total_tokens"} {
			c, err := col(n)
			if err != nil {
				return nil, err
			}
			cols = append(cols, c)
		}
	} else {
		c, err := col(kw.string("col_name_distance"))
		if err != nil {
			return nil, err
		}
		cols = []int{c}
	}
	type rec struct {
		ints []int
		p    float64
	}
	var recs []rec
	for row := 2; ; row++ {
		fields, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("remove_base_human_behavior: %s: %w", path, err)
		}
		p, err := strconv.ParseFloat(fields[probCol], 64)
		if err != nil || math.IsNaN(p) {
			return nil, fmt.Errorf("remove_base_human_behavior: %s row %d column %s: %q is not a number", path, row, header[probCol], fields[probCol])
		}
		rc := rec{p: p}
		for _, c := range cols {
			v, err := strconv.ParseFloat(fields[c], 64)
			if err != nil || v != math.Trunc(v) {
				return nil, fmt.Errorf("remove_base_human_behavior: %s row %d column %s: %q is not an integer", path, row, header[c], fields[c])
			}
			rc.ints = append(rc.ints, int(v))
		}
		recs = append(recs, rc)
	}
	if len(recs) == 0 {
		return nil, fmt.Errorf("remove_base_human_behavior: %s has no rows", path)
	}
	t := &baseTable{}
	if abs {
		t.abs = map[int][][]float64{}
		counts := map[int][][]float64{}
		for _, rc := range recs {
			cur, tgt, tot := rc.ints[0], rc.ints[1], rc.ints[2]
			if cur < 0 || tgt < 0 || cur >= tot || tgt >= tot {
				return nil, fmt.Errorf("remove_base_human_behavior: %s: position (%d, %d) outside total_tokens %d", path, cur, tgt, tot)
			}
			if t.abs[tot] == nil {
				t.abs[tot], counts[tot] = square(tot), square(tot)
				t.sizes = append(t.sizes, tot)
			}
			t.abs[tot][cur][tgt] += rc.p
			counts[tot][cur][tgt]++
		}
		for tot, m := range t.abs { // duplicates (several files) are averaged
			for i := range m {
				for j := range m[i] {
					if c := counts[tot][i][j]; c > 1 {
						m[i][j] /= c
					}
				}
			}
		}
		slices.Sort(t.sizes)
		return t, nil
	}
	slices.SortStableFunc(recs, func(a, b rec) int { return a.ints[0] - b.ints[0] })
	t.minD = recs[0].ints[0]
	t.byDist = make([]float64, recs[len(recs)-1].ints[0]-t.minD+1)
	for _, rc := range recs {
		t.byDist[rc.ints[0]-t.minD] = rc.p
	}
	s := sum(t.byDist)
	for i := range t.byDist {
		t.byDist[i] /= s
	}
	return t, nil
}

func square(n int) [][]float64 {
	m := make([][]float64, n)
	for i := range m {
		m[i] = make([]float64, n)
	}
	return m
}

// row returns the base row of token i in an n×n matrix: b[j] = p(j − i), where the
// distance is read from the CSV's own distance column (which getavgbehavior stored
// with its sign flipped), or in absolute-position mode row i of the matrix of the
// smallest total_tokens ≥ n.
func (t *baseTable) row(i, n int) ([]float64, error) {
	b := make([]float64, n)
	if t.abs != nil {
		k, ok := slices.BinarySearch(t.sizes, n)
		if !ok && k == len(t.sizes) {
			return nil, fmt.Errorf("remove_base_human_behavior: no base matrix with total_tokens ≥ %d (largest %d)", n, t.sizes[len(t.sizes)-1])
		}
		copy(b, t.abs[t.sizes[k]][i][:n])
		return b, nil
	}
	for j := range b {
		if d := j - i - t.minD; d >= 0 && d < len(t.byDist) {
			b[j] = t.byDist[d]
		}
	}
	return b, nil
}

// removeBaseBehavior is remove_base_human_behavior: each row of both square
// matrices is normalised to sum 1 (when its sum is positive), then the base row is
// subtracted (mode subtract) or divided out, h/(b + min_base_value) (mode divide).
// The machine uses its own base CSV when given; without one its rows are only
// normalised,
// or, with machine_base_all_ones, treated as the original does with a base of ones.
func removeBaseBehavior(p *Pair, kw Kwargs) error {
	if err := needMatrices(p, "remove_base_human_behavior", true); err != nil {
		return err
	}
	mode := kw.string("mode")
	if mode != "divide" && mode != "subtract" {
		return fmt.Errorf("remove_base_human_behavior: mode %q, \"divide\" or \"subtract\" expected", mode)
	}
	if p.bases == nil {
		p.bases = &baseCache{}
	}
	load := func(key string) (*baseTable, error) {
		path := kw.string(key)
		if path == "" {
			return nil, nil
		}
		if !filepath.IsAbs(path) {
			path = filepath.Join(p.Dir, path)
		}
		return p.bases.get(path, kw)
	}
	hb, err := load("path_csv_normalization_prob_human")
	if err != nil {
		return err
	}
	if hb == nil {
		return fmt.Errorf("remove_base_human_behavior: path_csv_normalization_prob_human is required")
	}
	mb, err := load("path_csv_normalization_prob_machine")
	if err != nil {
		return err
	}
	minBase := kw.float("min_base_value")
	apply := func(a *Array, base *baseTable, ones bool) error {
		n := a.Shape[0]
		for i := range n {
			r := a.Row(i)
			if s := sum(r); s > 0 {
				for j := range r {
					r[j] /= s
				}
			}
			if base == nil && !ones {
				continue // rows normalised, no base to remove
			}
			var b []float64
			if ones {
				b = slices.Repeat([]float64{1}, n)
			} else if b, err = base.row(i, n); err != nil {
				return err
			}
			for j := range r {
				if mode == "subtract" {
					r[j] -= b[j]
				} else {
					r[j] /= b[j] + minBase
				}
			}
		}
		return nil
	}
	if err := apply(p.Human, hb, false); err != nil {
		return err
	}
	return apply(p.Machine, mb, mb == nil && kw.bool("machine_base_all_ones"))
}
