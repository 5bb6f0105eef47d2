// Command jacobianbench times the Jacobian singular values of attnscope
// diagnose (package diagnose) on fixed inputs, for a side-by-side comparison
// with torch_jacobian.py (the same examples, positions and checkpoint):
//
//	go run ./bench/jacobianbench -model DIR -n 100 -len 128 -inputs in.json -out go.npy
//
// It writes the inputs (random ids, seeded; output positions) to -inputs when
// the file does not exist, else reads them, and prints wall time, CPU time and
// peak RSS. Not a test: timings depend on the machine.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"math/rand/v2"
	"os"
	"time"

	"github.com/attnscope/attnscope/checkpoint"
	"github.com/attnscope/attnscope/diagnose"
	"github.com/attnscope/attnscope/internal/procstat"
)

type inputs struct {
	IDs       [][]int `json:"ids"`
	Positions []int   `json:"positions"`
}

func main() {
	dir := flag.String("model", "", "BERT checkpoint folder")
	n := flag.Int("n", 100, "examples")
	length := flag.Int("len", 128, "tokens per example")
	in := flag.String("inputs", "jacobian_inputs.json", "inputs file (written when absent)")
	out := flag.String("out", "", "singular values .npy [n, len, width] (optional)")
	chunk := flag.Int("chunk", 32, "output coordinates per reverse pass")
	genOnly := flag.Bool("gen", false, "write -inputs and exit (for sidebyside.sh)")
	flag.Parse()
	net, err := diagnose.LoadNet(*dir, diagnose.HeadOptions{})
	if err != nil {
		log.Fatal(err)
	}
	var x inputs
	if b, err := os.ReadFile(*in); err == nil {
		if err := json.Unmarshal(b, &x); err != nil {
			log.Fatal(err)
		}
	} else {
		rng := rand.New(rand.NewPCG(1, 2))
		for range *n {
			ids := make([]int, *length)
			for i := range ids {
				ids[i] = 5 + rng.IntN(net.Cfg.VocabSize-5)
			}
			x.IDs = append(x.IDs, ids)
			x.Positions = append(x.Positions, rng.IntN(*length))
		}
		b, _ := json.Marshal(x)
		if err := os.WriteFile(*in, b, 0o644); err != nil {
			log.Fatal(err)
		}
	}
	if *genOnly {
		return
	}
	j, err := diagnose.NewJacobians(net, diagnose.JacobianOptions{Chunk: *chunk})
	if err != nil {
		log.Fatal(err)
	}
	defer j.Close()
	start, cpu0 := time.Now(), procstat.CPUTime()
	var all []float64
	for i, ids := range x.IDs {
		sv, err := j.SingularValues(diagnose.Example{IDs: ids}, x.Positions[i])
		if err != nil {
			log.Fatal(err)
		}
		all = append(all, sv...)
	}
	wall, cpu := time.Since(start), procstat.CPUTime()-cpu0
	fmt.Printf("go: %d examples × %d tokens, width %d: wall %.1f s, cpu %.1f s, peak RSS %d MiB\n",
		len(x.IDs), len(x.IDs[0]), net.Cfg.Hidden, wall.Seconds(), cpu.Seconds(), procstat.PeakRSS()>>20)
	if *out != "" {
		if err := checkpoint.WriteNpyFile(*out, []int{len(x.IDs), len(x.IDs[0]), net.Cfg.Hidden}, all); err != nil {
			log.Fatal(err)
		}
	}
}
