package corpus_test

import (
	"fmt"
	"strings"

	"github.com/attnscope/attnscope/seq2seq/corpus"
)

func ExampleTokenize() {
	fmt.Println(strings.Join(corpus.Tokenize("def add(a, b):\n\treturn a+b  # 2nd"), " "))
	// Output: def add ( a , b ) : NEWLINE INDENT return a + b # 2 nd
}

func ExampleBuildVocab() {
	v := corpus.BuildVocab([][]string{{"return", "x"}, {"return", "y", "x"}}, corpus.FreqThreshold)
	fmt.Println(v.Itos, v.Encode([]string{"return", "z"}, 50), v.Decode([]int{1, 4, 3, 2, 5}))
	// Output: [<PAD> <SOS> <EOS> <UNK> return x] [1 4 3 2] [return <UNK>]
}
