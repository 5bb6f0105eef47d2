package derive

// DefaultRegistry returns a new registry holding every built-in pass function.
func DefaultRegistry() *Registry {
	var r Registry
	for _, s := range builtinSpecs() {
		s.Axes = builtinAxes[s.Name]
		if err := r.Register(s); err != nil {
			panic(err) // a programming error in the built-in table, caught by the tests
		}
	}
	return &r
}

func builtinSpecs() []Spec {
	specs := append(analysisSpecs(), flowSpecs()...)
	specs = append(specs, statsSpecs()...)
	return append(specs,
		codeCategorySpec(),
		linesSpec(),
		charsSpec(),
		groundTruthSpec(),
	)
}
