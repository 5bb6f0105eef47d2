// Command attnscope captures, analyses and shows the attention of transformer models.
//
// Every command is a thin shell over a package that a Go program can import; see the
// README for the quick start and the layout of a run folder.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// Exit codes of the attnscope binary.
const (
	exitOK    = 0
	exitError = 1
	exitUsage = 2
)

func main() {
	os.Exit(run(os.Args[1:]))
}

// run executes the command line and returns the process exit code.
func run(args []string) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := newRootCmd()
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	fmt.Fprintf(os.Stderr, "attnscope: %v\n", err)
	var ue *usageError
	if strings.HasPrefix(err.Error(), "unknown command ") {
		ue = &usageError{cmd: "attnscope", err: err}
	}
	if ue != nil || errors.As(err, &ue) {
		fmt.Fprintf(os.Stderr, "Run '%s --help' for usage.\n", ue.cmd)
		return exitUsage
	}
	return exitError
}
