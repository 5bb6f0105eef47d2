// Package buildinfo reports the version of the attnscope build, for `attnscope version`
// and the provenance recorded in every run.
package buildinfo

import "runtime/debug"

// version is set at link time: -ldflags "-X github.com/attnscope/attnscope/internal/buildinfo.version=v0.1.0".
var version = ""

// Version returns the tool version: the link-time version if set, else the module
// version, else "devel" followed by the VCS revision when the binary records one.
func Version() string {
	if version != "" {
		return version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "devel"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" && len(s.Value) >= 12 {
			return "devel-" + s.Value[:12]
		}
	}
	return "devel"
}
