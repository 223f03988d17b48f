// Package bundled holds the harness's default model, made by the project
// itself: tinycnn, a small int8 CNN (convolution, depthwise convolution,
// max and average pooling, fully connected, softmax; 24x24x3 input, 10
// classes, about 230k multiply-accumulates and 5.6 KB of weights), with one
// example input. See package harness/modelgen for the network and how it is
// generated and quantized.
//
// The files tinycnn.tflite and tinycnn_input.bin are generated, byte for
// byte reproducibly, by modelgen.Generate(modelgen.DefaultConfig()), and
// embedded in the program; this package does not depend on the generator.
// TestBundledIsReproducible checks that they are what the generator makes.
// After a change to the generator, rewrite them with
//
//	go generate ./harness/bundled
//
// which runs
//
//	go test -run '^TestBundledIsReproducible$' -update ./harness/bundled
package bundled

import _ "embed"

//go:generate go test -run ^TestBundledIsReproducible$ -update .

// ModelName is the name commands and reports give the bundled model, in
// place of a file path.
const ModelName = "bundled:tinycnn"

//go:embed tinycnn.tflite
var modelFile []byte

//go:embed tinycnn_input.bin
var inputFile []byte

// Model returns the bundled model's .tflite file. The slice is shared: do
// not modify it.
func Model() []byte { return modelFile }

// Input returns the bundled example input: the model's [1,24,24,3] int8
// input tensor as raw bytes in NHWC order. The slice is shared: do not
// modify it.
func Input() []byte { return inputFile }
