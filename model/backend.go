package model

import (
	"fmt"
	"os"
	"strings"

	"github.com/gomlx/compute"
	_ "github.com/gomlx/compute/gobackend" // pure-Go backend
)

// NewBackend returns the GoMLX backend named by config ("go", "xla:cuda",
// ...); empty means $GOMLX_BACKEND, else DefaultBackend. The Go backend
// uses GOMAXPROCS threads, read when it is created.
//
// The XLA backend ("xla:cuda", "xla:cpu", or "xla:" followed by a plugin's
// path) is in binaries built with -tags xla (make build-xla). Its PJRT plugin
// is the one found on the machine ($PJRT_PLUGIN_LIBRARY_PATH); nothing is
// downloaded. TF32 matrix products are turned off unless the config sets
// tf32 itself: with TF32 a float32 product keeps 10 mantissa bits, far
// outside the tolerances attnscope is checked to against PyTorch.
func NewBackend(config string) (b compute.Backend, err error) {
	if config == "" {
		config = os.Getenv(compute.ConfigEnvVar)
	}
	if config == "" {
		config = DefaultBackend
	}
	if isXLA(config) {
		if !xlaBuilt {
			return nil, fmt.Errorf("backend %q: this attnscope was built without the XLA backend; build it with make build-xla (go build -tags xla)", config)
		}
		config = xlaConfig(config)
	}
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("backend %q: %v", config, p)
		}
	}()
	b, err = compute.NewWithConfig(config)
	if err != nil {
		if isXLA(config) {
			return nil, fmt.Errorf("backend %q: %w (attnscope loads the PJRT plugin found on this machine and downloads none: set PJRT_PLUGIN_LIBRARY_PATH to the folder of pjrt_c_api_<name>_plugin.so, or give the plugin's path after \"xla:\")", config, err)
		}
		return nil, fmt.Errorf("backend %q: %w", config, err)
	}
	return b, nil
}

// isXLA reports whether a backend config names GoMLX's XLA backend under any
// of the names go-xla registers it with.
func isXLA(config string) bool {
	name, _, _ := strings.Cut(config, ":")
	switch name {
	case "xla", "stablehlo", "shlo", "hlo":
		return true
	}
	return false
}

// xlaConfig adds tf32=false to an XLA config that does not set tf32.
func xlaConfig(config string) string {
	name, opts, _ := strings.Cut(config, ":")
	for _, o := range strings.Split(opts, ",") {
		if k, _, _ := strings.Cut(o, "="); strings.TrimSpace(k) == "tf32" {
			return config
		}
	}
	if opts == "" {
		return name + ":,tf32=false"
	}
	return config + ",tf32=false"
}
