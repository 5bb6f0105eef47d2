package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"unicode/utf8"

	"github.com/attnscope/attnscope/tokenizer"
	"github.com/spf13/cobra"
)

func newTokenizeCmd() *cobra.Command {
	var (
		tokPath   string
		files     []string
		noSpecial bool
		asJSON    bool
	)
	c := &cobra.Command{
		Use:   "tokenize --tokenizer DIR|FILE [--no-special] [--json] [--file F]... [--] [TEXT]...",
		Short: "Encode texts with a Hugging Face tokenizer.json and print ids, tokens and offsets",
		Long: `tokenize encodes each TEXT argument, and each --file as one whole text, with a
Hugging Face tokenizer.json (a file, or a folder holding tokenizer.json and
tokenizer_config.json), exactly as the Rust tokenizers library does.

Without --json it prints, for every input, one line per token: position, id, token,
character offsets [start,end) and the covered text. With --json it prints one JSON
object per input per line: {"ids":[...],"tokens":[...],"offsets":[[start,end],...]}.
Offsets count Unicode code points of the input. Special tokens (such as [CLS] or <s>)
are added unless --no-special. --file - reads standard input.`,
		Example: `  attnscope tokenize --tokenizer ../shared/reference/tokenizers/gpt2-bpe -- "def f(x): return x"
  attnscope tokenize --tokenizer tok.json --json --file testdata/samples/stack.py`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runTokenize(cmd, args, tokPath, files, noSpecial, asJSON)
		},
	}
	f := c.Flags()
	f.StringVar(&tokPath, "tokenizer", "", "tokenizer.json file, or a folder holding it")
	f.StringArrayVar(&files, "file", nil, "encode this file's whole content as one text (repeatable; - for stdin)")
	f.BoolVar(&noSpecial, "no-special", false, "do not add the post-processor's special tokens")
	f.BoolVar(&asJSON, "json", false, "print one JSON object per input per line")
	return c
}

func firstInvalid(s string) int {
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			return i
		}
		i += n
	}
	return -1
}

func writeEncodingJSON(w io.Writer, e *tokenizer.Encoding) error {
	obj := struct {
		IDs     []int    `json:"ids"`
		Tokens  []string `json:"tokens"`
		Offsets [][2]int `json:"offsets"`
	}{e.IDs, e.Tokens, e.Offsets}
	if obj.IDs == nil {
		obj.IDs, obj.Tokens, obj.Offsets = []int{}, []string{}, [][2]int{}
	}
	data, err := json.Marshal(obj)
	if err != nil {
		return fmt.Errorf("encode JSON: %w", err)
	}
	data = append(data, '\n')
	_, err = w.Write(data)
	return err
}

func writeEncodingText(w io.Writer, name, text string, e *tokenizer.Encoding) {
	fmt.Fprintf(w, "# %s: %d tokens\n", name, e.Len())
	runes := []rune(text)
	for i := range e.IDs {
		off := e.Offsets[i]
		span := ""
		if e.SequenceIDs[i] >= 0 && off[0] >= 0 && off[1] <= len(runes) && off[0] <= off[1] {
			span = strconv.Quote(string(runes[off[0]:off[1]]))
		}
		fmt.Fprintf(w, "%5d %7d  %-20s [%d,%d)  %s\n", i, e.IDs[i], strconv.Quote(e.Tokens[i]), off[0], off[1], span)
	}
}

// runTokenize encodes the texts of args and files with the tokenizer at tokPath and prints them.
func runTokenize(cmd *cobra.Command, args []string, tokPath string, files []string, noSpecial, asJSON bool) error {
	if tokPath == "" {
		return usagef(cmd, "--tokenizer is required")
	}
	if len(args) == 0 && len(files) == 0 {
		return usagef(cmd, "give at least one TEXT or --file")
	}
	tk, err := tokenizer.Load(tokPath)
	if err != nil {
		return err
	}
	type input struct{ name, text string }
	var inputs []input
	for i, a := range args {
		inputs = append(inputs, input{fmt.Sprintf("argument %d", i+1), a})
	}
	for _, f := range files {
		var data []byte
		if f == "-" {
			data, err = io.ReadAll(cmd.InOrStdin())
		} else {
			data, err = os.ReadFile(f)
		}
		if err != nil {
			return fmt.Errorf("read %s: %w", f, err)
		}
		inputs = append(inputs, input{f, string(data)})
	}
	// Check every input before printing anything.
	encs := make([]*tokenizer.Encoding, len(inputs))
	for i, in := range inputs {
		if !utf8.ValidString(in.text) {
			return fmt.Errorf("%s: text is not valid UTF-8 (first bad byte at offset %d)", in.name, firstInvalid(in.text))
		}
		if encs[i], err = tk.Encode(in.text, !noSpecial); err != nil {
			return fmt.Errorf("%s: %w", in.name, err)
		}
	}
	w := bufio.NewWriter(cmd.OutOrStdout())
	for i, e := range encs {
		if asJSON {
			if err := writeEncodingJSON(w, e); err != nil {
				return err
			}
			continue
		}
		writeEncodingText(w, inputs[i].name, inputs[i].text, e)
	}
	return w.Flush()
}
