package metrics_test

import (
	"fmt"
	"strings"

	"github.com/attnscope/attnscope/seq2seq/metrics"
)

func ExampleBLEU() {
	ref := strings.Fields("def f ( x ) : return x")
	fmt.Printf("%.6f %.6f\n", metrics.BLEU(ref, strings.Fields("def f ( y ) : return x")), metrics.BLEU(ref, strings.Fields("def f ( x )")))
	// Output: 0.500000 0.548812
}

func ExampleValidPython() {
	fmt.Println(metrics.ValidPython(strings.Fields("def f ( x ) : NEWLINE INDENT return x")), metrics.ValidPython(strings.Fields("def f (")))
	// Output: true false
}
