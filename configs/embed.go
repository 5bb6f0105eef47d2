// Package configs embeds the configuration files that commands use without a path
// given by the user.
package configs

import _ "embed"

//go:embed demo-derive.yaml
var demoDerive []byte

// DemoDeriveName is the repository path of the demo's derive config, for error messages.
const DemoDeriveName = "configs/demo-derive.yaml"

// DemoDerive returns a copy of configs/demo-derive.yaml: the analyses
// `attnscope demo` runs over its captured run.
func DemoDerive() []byte { return append([]byte(nil), demoDerive...) }
