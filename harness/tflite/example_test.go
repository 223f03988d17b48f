package tflite_test

import (
	"fmt"

	"github.com/batteryless/harness/harness/tflite"
)

func Example() {
	// A one-operator model: out = RELU(in), with int8 tensors.
	q := &tflite.Quantization{Scale: []float32{0.5}, ZeroPoint: []int64{-1}}
	m := &tflite.Model{
		Version:       tflite.SchemaVersion,
		OperatorCodes: []tflite.OperatorCode{{Builtin: tflite.OpRelu, Version: 1}},
		Subgraphs: []tflite.Subgraph{{
			Tensors: []tflite.Tensor{
				{Name: "in", Type: tflite.TensorInt8, Shape: []int32{1, 4}, Quant: q},
				{Name: "out", Type: tflite.TensorInt8, Shape: []int32{1, 4}, Quant: q},
			},
			Inputs:    []int32{0},
			Outputs:   []int32{1},
			Operators: []tflite.Operator{{OpcodeIndex: 0, Inputs: []int32{0}, Outputs: []int32{1}}},
		}},
		Buffers: []tflite.Buffer{{}}, // buffer 0: the empty buffer
	}
	data, err := tflite.Encode(m)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("identifier %s\n", data[4:8])

	back, err := tflite.Decode(data)
	if err != nil {
		fmt.Println(err)
		return
	}
	sg := back.Subgraphs[0]
	for _, op := range sg.Operators {
		in := sg.Tensors[op.Inputs[0]]
		fmt.Printf("%v: %s %v %v zero point %d\n",
			back.OperatorCodes[op.OpcodeIndex].Builtin, in.Name, in.Type, in.Shape, in.Quant.ZeroPoint[0])
	}

	// Corrupt input gives a one-line error naming the field.
	data[3] = 0x7f
	_, err = tflite.Decode(data)
	fmt.Println(err)

	_, err = tflite.Decode([]byte("not a model at all"))
	fmt.Println(err)
	// Output:
	// identifier TFL3
	// RELU: in INT8 [1 4] zero point -1
	// tflite: root table: offset 2130706460 at 0 points past the end of the 392-byte file
	// tflite: file identifier is "a mo", want "TFL3" (not a TensorFlow Lite model?)
}
