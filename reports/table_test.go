package reports

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

func TestTableHasHeaderRowsAndFooter(t *testing.T) {
	var b bytes.Buffer
	if err := Table(&b, []string{"op", "passed"}, [][]string{{"conv2d_s8", "18"}, {"softmax_s8", "1"}}, []string{"total", "19"}); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{"op", "passed", "conv2d_s8", "18", "softmax_s8", "total", "19"} {
		if !strings.Contains(out, want) {
			t.Errorf("table lacks %q:\n%s", want, out)
		}
	}
}

func ExampleTable() {
	_ = Table(os.Stdout, []string{"layer", "macs"}, [][]string{{"CONV_2D", "124416"}}, nil)
	// Output:
	// ┌─────────┬────────┐
	// │  layer  │  macs  │
	// ├─────────┼────────┤
	// │ CONV_2D │ 124416 │
	// └─────────┴────────┘
}
