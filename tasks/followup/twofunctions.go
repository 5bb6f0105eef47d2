package followup

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/attnscope/attnscope/tasks"
)

// TwoFunctionsArgs are the kwargs of the two_functions_one_test creator
// (followup-attention's attwizard/creators/two_functions_one_test.py).
type TwoFunctionsArgs struct {
	Seed                   *int64 `yaml:"seed"`
	FolderWithSeedFunction string `yaml:"folder_with_seed_functions"`
	StartOfTestStatement   string `yaml:"start_of_test_statement"`
}

var twoFunctionsKeys = []string{"seed", "folder_with_seed_functions", "start_of_test_statement"}

// seedFunction is one .py file split at the first line starting with the test statement.
type seedFunction struct {
	file, function, test string
}

// readSeedFunctions is _get_all_functions, with the files in name order (the original
// took os.listdir's order, which depends on the file system).
func readSeedFunctions(dir, startOfTest string) ([]seedFunction, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var names []string
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), ".py") {
			names = append(names, e.Name())
		}
	}
	sort.Strings(names)
	var out []seedFunction
	for _, n := range names {
		b, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil {
			return nil, err
		}
		var fn, test []string
		inTest := false
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, startOfTest) {
				inTest = true
			}
			if inTest {
				test = append(test, line)
			} else {
				fn = append(fn, line)
			}
		}
		out = append(out, seedFunction{file: n, function: strings.Join(fn, "\n"), test: strings.Join(test, "\n")})
	}
	return out, nil
}

// twoFunctions prepares TwoFunctionsOneTestCreator: every pair of seed functions
// (itertools.combinations order), shuffled. The original shuffled before seeding (so
// unreproducibly); here the shuffle is the first use of the seeded generator.
func twoFunctions(rng *tasks.PyRandom, a *TwoFunctionsArgs, n int) (func() ([]string, []float64), error) {
	fns, err := readSeedFunctions(a.FolderWithSeedFunction, a.StartOfTestStatement)
	if err != nil {
		return nil, err
	}
	var pairs [][2]int
	for i := range fns {
		for j := i + 1; j < len(fns); j++ {
			pairs = append(pairs, [2]int{i, j})
		}
	}
	if n > len(pairs) {
		return nil, fmt.Errorf("%d prompts asked but the %d .py files of %s make only %d pairs", n, len(fns), a.FolderWithSeedFunction, len(pairs))
	}
	rng.ShuffleIndices(len(pairs), func(i, j int) { pairs[i], pairs[j] = pairs[j], pairs[i] })
	next := 0
	return func() ([]string, []float64) {
		pair := pairs[next]
		next++
		target := rng.Choice(2)
		first, second := fns[pair[0]].function, fns[pair[1]].function
		test := fns[pair[target]].test
		f1, f2, t := strings.Split(first, "\n"), strings.Split(second, "\n"), strings.Split(test, "\n")
		parts := append(append(append(append(append([]string{}, f1...), ""), f2...), ""), t...)
		w := make([]float64, 0, len(parts))
		rel := func(on bool, k int) {
			for ; k > 0; k-- {
				if on {
					w = append(w, 1)
				} else {
					w = append(w, 0)
				}
			}
		}
		rel(target == 0, len(f1))
		rel(false, 1)
		rel(target == 1, len(f2))
		rel(false, 1)
		rel(true, len(t))
		return parts, w
	}, nil
}
