package main

import (
	"fmt"
	"io/fs"
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
			dirs, opts, err := stageAll(cmd, args)
			if err != nil {
				return err
			}
			opts.Hosts, opts.AnyHost = []string{host}, !loopback
			srv, err := web.New(dirs, opts)
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

// stageAll gives local folders for run arguments that may be s3://: an S3 run is
// staged without its attention files and derived outputs (store.StageRead); the
// returned options read attention one layer at a time with ranged requests and
// download a derived output when first asked.
func stageAll(cmd *cobra.Command, args []string) ([]string, web.Options, error) {
	out := make([]string, len(args))
	remote := map[string]*store.Bucket{}
	for i, a := range args {
		dir, b, err := store.StageRead(cmd.Context(), a)
		if err != nil {
			return nil, web.Options{}, err
		}
		out[i] = dir
		if b != nil {
			remote[dir] = b
		}
	}
	if len(remote) == 0 {
		return out, web.Options{}, nil
	}
	ctx := cmd.Context()
	return out, web.Options{
		RemoteAttention: func(dir, id string) (*store.RemoteAttention, error) {
			if b := remote[dir]; b != nil {
				return b.OpenAttention(ctx, id)
			}
			return nil, nil
		},
		Fetch: func(dir, rel string) error {
			if b := remote[dir]; b != nil {
				return b.Fetch(ctx, dir, rel)
			}
			return fs.ErrNotExist
		},
	}, nil
}
