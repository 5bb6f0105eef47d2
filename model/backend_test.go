package model

import (
	"strings"
	"testing"
)

func TestXLAConfig(t *testing.T) {
	for in, want := range map[string]string{
		"xla:cuda":                   "xla:cuda,tf32=false",
		"xla":                        "xla:,tf32=false",
		"xla:cuda,preallocate=false": "xla:cuda,preallocate=false,tf32=false",
		"xla:cuda,tf32=true":         "xla:cuda,tf32=true",
		"stablehlo:cpu":              "stablehlo:cpu,tf32=false",
	} {
		if got := xlaConfig(in); got != want {
			t.Errorf("xlaConfig(%q) = %q, want %q", in, got, want)
		}
	}
	for config, want := range map[string]bool{"xla:cuda": true, "hlo": true, "go": false, "go:ops_sequential": false, "xlax": false} {
		if got := isXLA(config); got != want {
			t.Errorf("isXLA(%q) = %v, want %v", config, got, want)
		}
	}
}

// TestBackendErrors: an XLA config in a pure-Go build names the build tag; an unknown
// backend names the config; neither panics.
func TestBackendErrors(t *testing.T) {
	_, err := NewBackend("nosuchbackend")
	if err == nil || !strings.Contains(err.Error(), `backend "nosuchbackend"`) {
		t.Errorf("unknown backend: %v", err)
	}
	b, err := NewBackend("xla:cuda")
	switch {
	case !xlaBuilt: // a pure-Go build refuses every XLA config, plugin or not
		if err == nil || !strings.Contains(err.Error(), "built without the XLA backend; build it with make build-xla") {
			t.Errorf("xla:cuda in a pure-Go build: %v", err)
		}
	case err == nil:
		b.Finalize()
		t.Skip("this XLA build found a CUDA PJRT plugin, so the error for a missing plugin cannot be produced here")
	case !strings.Contains(err.Error(), "PJRT_PLUGIN_LIBRARY_PATH"):
		t.Errorf("xla:cuda without a plugin: %v", err)
	}
}
