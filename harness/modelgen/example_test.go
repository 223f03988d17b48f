package modelgen_test

import (
	"fmt"
	"strings"

	"github.com/batteryless/harness/harness/model"
	"github.com/batteryless/harness/harness/modelgen"
	"github.com/batteryless/harness/harness/refexec"
)

func Example() {
	modelBytes, input, err := modelgen.Generate(modelgen.DefaultConfig())
	if err != nil {
		fmt.Println(err)
		return
	}
	m, err := model.Parse(modelBytes, "tinycnn")
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%d MACs, %d weight bytes, %d arena bytes, %d input bytes\n",
		m.MACs(), m.WeightBytes(), m.Plan.ArenaBytes, len(input))
	for _, l := range m.Layers {
		out := m.Tensors[l.Output]
		fmt.Println(strings.TrimSpace(fmt.Sprintf("%-17s %-14s %s", l.Op, fmt.Sprint(out.Dims), l.Activation)))
	}

	// Run the example input with the reference executor; the int8 softmax
	// output q stands for the probability (q + 128) / 256.
	out, err := refexec.New(m).Run(input)
	if err != nil {
		fmt.Println(err)
		return
	}
	probs := model.BytesAsInt8(out)
	best := 0
	for i, q := range probs {
		if q > probs[best] {
			best = i
		}
	}
	fmt.Printf("class %d, probability %.3f\n", best, float64(int(probs[best])+128)/256)
	// Output:
	// 383306 MACs, 6120 weight bytes, 11520 arena bytes, 1728 input bytes
	// CONV_2D           [1 24 24 16]   RELU
	// DEPTHWISE_CONV_2D [1 12 12 16]   RELU6
	// CONV_2D           [1 12 12 16]   RELU
	// MAX_POOL_2D       [1 6 6 16]     NONE
	// CONV_2D           [1 4 4 32]     RELU
	// AVERAGE_POOL_2D   [1 1 1 32]     NONE
	// RESHAPE           [1 32]
	// FULLY_CONNECTED   [1 10]         NONE
	// SOFTMAX           [1 10]
	// class 5, probability 0.336
}
