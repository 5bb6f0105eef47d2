package main

import (
	"fmt"
	"net"

	"github.com/spf13/cobra"

	"github.com/attnscope/attnscope/store"
	"github.com/attnscope/attnscope/web"
)

func newServeCmd() *cobra.Command {
	var addr string
	cmd := &cobra.Command{
		Use:   "serve RUN [RUN...] [--addr 127.0.0.1:8080]",
		Short: "Browse runs' attention interactively in a web browser (head, model, neuron, matrix, source views)",
		Long: `serve starts a web server for one or more run folders and prints its address. The
page has a head view (BertViz-like), a model view (all layers × heads), a neuron view
(queries and keys, when captured with --qkv), a matrix view that zooms from the whole
matrix down to single tokens (tiles of a max- and mean-pooled pyramid, cached in
RUN/cache/tiles on first use), a source-code view, derived outputs, the metrics table
and a side-by-side comparison. Everything is embedded in the binary; the page fetches
nothing from the network. The server is read-only except for the tile cache, and
binds to 127.0.0.1 unless --addr says otherwise. Stop it with Ctrl-C.`,
		Example: `  attnscope serve runs/gpt2-code
  attnscope serve runs/gpt2-code runs/bert-code --addr 127.0.0.1:9000`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if _, _, err := net.SplitHostPort(addr); err != nil {
				return usagef(cmd, "--addr %q: host:port expected", addr)
			}
			host, _, _ := net.SplitHostPort(addr)
			loopback := web.IsLoopback(addr)
			defer lowerGC()() // pyramids are large live arrays, like weights
			runs, err := openAll(cmd, args)
			if err != nil {
				return err
			}
			srv, err := web.NewRuns(runs, web.Options{Hosts: []string{host}, AnyHost: !loopback})
			if err != nil {
				return err
			}
			if !loopback {
				fmt.Fprintf(cmd.ErrOrStderr(), "warning: --addr %s is reachable from other machines; anyone who can reach it can read the served runs\n", addr)
			}
			out := cmd.OutOrStdout()
			return srv.ListenAndServe(cmd.Context(), addr, func(a net.Addr) {
				fmt.Fprintf(out, "serving %d run(s) at http://%s/ (Ctrl-C to stop)\n", len(args), a)
			})
		},
	}
	cmd.Flags().StringVar(&addr, "addr", "127.0.0.1:8080", "address to listen on (host:port)")
	return cmd
}

// openAll opens the run arguments, local folders or s3:// runs (store.OpenRead:
// only their small files are downloaded; tensors are read with ranged requests
// and derived outputs downloaded when first asked).
func openAll(cmd *cobra.Command, args []string) ([]*store.Run, error) {
	out := make([]*store.Run, len(args))
	for i, a := range args {
		r, err := store.OpenRead(cmd.Context(), a)
		if err != nil {
			return nil, err
		}
		out[i] = r
	}
	return out, nil
}
