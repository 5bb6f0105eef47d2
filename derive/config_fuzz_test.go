package derive

import "testing"

// FuzzParseConfig: any config text gives a checked config or an error, never a panic,
// and every pass of an accepted config resolved to a function.
func FuzzParseConfig(f *testing.F) {
	f.Add(testConfig)
	f.Add(slowConfig)
	f.Add("passes:\n  - {name: a, function: head_sum, kwargs: {scale: 1e400}}\n")
	f.Add("passes:\n  - {name: a, function: n_tokens, kwargs: {mode: [1, 2]}}\n")
	f.Add("passes: {name: a}\n")
	f.Add("&x [*x]")
	reg := testRegistry(f)
	f.Fuzz(func(t *testing.T, text string) {
		cfg, err := ParseConfig("fuzz.yaml", []byte(text), reg)
		if err != nil {
			return
		}
		for _, p := range cfg.Passes {
			if p.Spec() == nil || p.Args() == nil {
				t.Fatalf("accepted pass %q without a function or arguments", p.Name)
			}
		}
	})
}
