package main

import (
	"runtime"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/attnscope/attnscope/internal/buildinfo"
)

// versionLine is what `attnscope version` and `attnscope --version` print.
func versionLine() string {
	return "attnscope " + buildinfo.Version() + " (" + runtime.Version() + ", " + runtime.GOOS + "/" + runtime.GOARCH + ")\n"
}

// addVersionFlag gives the root command --version (the same line as `attnscope version`).
func addVersionFlag(root *cobra.Command) {
	root.Version = buildinfo.Version()
	root.SetVersionTemplate(versionLine())
	root.Flags().Bool("version", false, "print the attnscope version and exit")
}

// hideDuplicateDefaults walks every command's flags: a flag whose usage text already
// states its default ("... (default: the last)") would otherwise get pflag's own
// "(default -1)" appended, so its recorded default is set to the type's zero value,
// which pflag does not print. The flag's value is unchanged.
func hideDuplicateDefaults(c *cobra.Command) {
	hide := func(f *pflag.Flag) {
		if !strings.Contains(f.Usage, "(default") {
			return
		}
		switch t := f.Value.Type(); {
		case t == "bool":
			f.DefValue = "false"
		case t == "duration":
			f.DefValue = "0s"
		case t == "string":
			f.DefValue = ""
		case strings.HasSuffix(t, "Slice") || strings.HasSuffix(t, "Array"):
			f.DefValue = "[]"
		default:
			f.DefValue = "0"
		}
	}
	c.Flags().VisitAll(hide)
	c.PersistentFlags().VisitAll(hide)
	for _, sub := range c.Commands() {
		hideDuplicateDefaults(sub)
	}
}
