package human_test

import (
	"context"
	"fmt"

	"github.com/attnscope/attnscope/human"
)

// The id of a session is the original's: sha256(user + task number), 6 hex digits.
func ExampleUniqueDataID() {
	fmt.Println(human.UniqueDataID("UbeerU", 3))
	// Output: d41dd8
}

// Two looks: token 0 from t = 0 s for 1 s, then token 1 from t = 2 s for 1 s. With
// decay 0.1 the pair adds (e^−0.1 − e^−0.2)/0.1 to F[0,1].
func ExampleFollowupMatrix() {
	f, _ := human.FollowupMatrix(context.Background(), []human.FollowupEvent{
		{Record: 0, Time: 0, Duration: 1},
		{Record: 1, Time: 2, Duration: 1},
	}, 2, 0.1)
	fmt.Printf("%.6f %.6f\n%.6f %.6f\n", f[0], f[1], f[2], f[3])
	// Output:
	// 0.000000 0.861067
	// 0.000000 0.000000
}
