//go:build xla

package model

// Built with -tags xla, attnscope registers GoMLX's XLA backend (go-xla, PJRT plugins
// loaded with dlopen when the backend is created), selected with --backend "xla:cuda"
// or "xla:cpu". Plugins are not downloaded: the one found on the machine is used
// ($PJRT_PLUGIN_LIBRARY_PATH or the standard search path). Builds without the tag stay
// pure Go.
import _ "github.com/gomlx/go-xla/compute/xla"

// xlaBuilt reports whether this binary includes the XLA backend.
const xlaBuilt = true
