package human

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// Baseline is one positional baseline of human reading written by getavgbehavior: per
// distance (target token − current token, as the file stores it), the mean probability
// and the number of matrix rows (or cells) it averages.
type Baseline struct {
	// Decay is the decay folder's δ as written in its name (decay_<δ>).
	Decay string
	// File is the CSV's name, Path its path.
	File, Path string
	// Title says what the baseline is.
	Title string
	// DistanceColumn, MeanColumn and CountColumn are the CSV's column names.
	DistanceColumn, MeanColumn, CountColumn string
	Distance, Mean, Count                   []float64
}

// Baseline files of getavgbehavior read by ReadBaselines, with their titles.
var baselineFiles = []struct{ file, title string }{
	{"df_base_top1_prob_based_on_distance.csv", "probability of the most followed-up token, by distance"},
	{"df_base_all_prob_based_on_distance_rebuttal.csv", "follow-up probability of every token, by distance (distance sign-flipped as the original stores it)"},
}

// ReadBaselines reads the positional baselines of a human run folder
// (RUN/human/decay_<δ>/data_avg_followup/), in decay order; none when getavgbehavior
// has not run.
func ReadBaselines(runDir string) ([]Baseline, error) {
	dirs, err := filepath.Glob(filepath.Join(runDir, HumanDir, "decay_*", "data_avg_followup"))
	if err != nil {
		return nil, err
	}
	sort.Strings(dirs)
	var out []Baseline
	for _, d := range dirs {
		decay := strings.TrimPrefix(filepath.Base(filepath.Dir(d)), "decay_")
		for _, f := range baselineFiles {
			p := filepath.Join(d, f.file)
			b, err := readBaseline(p)
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				return nil, err
			}
			b.Decay, b.File, b.Title = decay, f.file, f.title
			out = append(out, *b)
		}
	}
	return out, nil
}

func readBaseline(path string) (*Baseline, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(rows) == 0 || len(rows[0]) != 3 {
		return nil, fmt.Errorf("%s: line 1: want a header of 3 columns (distance, mean, count)", path)
	}
	b := &Baseline{Path: path, DistanceColumn: rows[0][0], MeanColumn: rows[0][1], CountColumn: rows[0][2]}
	for i, r := range rows[1:] {
		var v [3]float64
		for k := range v {
			if v[k], err = strconv.ParseFloat(r[k], 64); err != nil {
				return nil, fmt.Errorf("%s: line %d: field %s: %q is not a number", path, i+2, rows[0][k], r[k])
			}
		}
		b.Distance = append(b.Distance, v[0])
		b.Mean = append(b.Mean, v[1])
		b.Count = append(b.Count, v[2])
	}
	return b, nil
}

// ReadMapping reads RUN/human/data_mapping.json (session id, user, task); none when
// the run has no such file.
func ReadMapping(runDir string) ([]MappingEntry, error) {
	p := filepath.Join(runDir, HumanDir, "data_mapping.json")
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var m []MappingEntry
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	return m, nil
}
