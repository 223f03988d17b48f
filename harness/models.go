package main

import (
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"

	"github.com/batteryless/harness/harness/bundled"
	"github.com/batteryless/harness/harness/model"
)

// loadModelInput loads the --model of the settings (default: the bundled
// model) and its --input.
func loadModelInput(s *settings) (m *model.Model, input []byte, modelPath string, err error) {
	modelPath = s.str("model")
	if m, err = loadModel(modelPath); err != nil {
		return nil, nil, modelPath, err
	}
	input, err = loadInput(s.str("input"), modelPath, m)
	return m, input, modelPath, err
}

// loadModel imports the model at path, or the bundled model when path is
// empty or names it.
func loadModel(path string) (*model.Model, error) {
	if path == "" || path == bundled.ModelName {
		return model.Parse(bundled.Model(), bundled.ModelName)
	}
	return model.Load(path)
}

// modelFileBytes is the model file's bytes (for the plan's model hash):
// the bundled model's, or the file's; nil if the file cannot be read.
func modelFileBytes(path string) []byte {
	if isBundled(path) {
		return bundled.Model()
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	return b
}

// isBundled reports whether a model path means the bundled model.
func isBundled(path string) bool { return path == "" || path == bundled.ModelName }

// defaultSeed is the seed of the input a model gets when none is named
// (other than the bundled model, which has its own example input).
const defaultSeed = 1

// seededPrefix names a generated input: "seeded:N".
const seededPrefix = "seeded:"

// inputName says which input a run used, for tables, JSON and logs: the
// path given, "bundled" (the bundled model's example input) or "seeded:N".
func inputName(path, modelPath string) string {
	if path != "" {
		return path
	}
	if isBundled(modelPath) {
		return "bundled"
	}
	return seededPrefix + strconv.Itoa(defaultSeed)
}

// loadInput reads an input tensor's raw bytes. With no path, the bundled
// model gets its bundled example input, and any other model a deterministic
// input from seed 1 (as "seeded:1" would give it); "seeded:N" generates one
// from seed N.
func loadInput(path, modelPath string, m *model.Model) ([]byte, error) {
	want := m.InputTensor().Bytes()
	if path == "" {
		if isBundled(modelPath) {
			return bundled.Input(), nil
		}
		path = inputName(path, modelPath)
	}
	if rest, ok := strings.CutPrefix(path, seededPrefix); ok {
		seed, err := strconv.ParseUint(rest, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("--input %s: want seeded:N with N a whole number", path)
		}
		return seededInput(m, seed), nil
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	// Read at most one byte more than needed: a wrong size is refused
	// without reading a huge file.
	data, err := io.ReadAll(io.LimitReader(f, int64(want)+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if err := checkInput(data, m); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return data, nil
}

// seededInput is a deterministic input for m from seed: every byte drawn
// uniformly (for int8 tensors, every value from -128 to 127), the same on
// every machine.
func seededInput(m *model.Model, seed uint64) []byte {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	b := make([]byte, m.InputTensor().Bytes())
	for i := range b {
		b[i] = byte(rng.Uint32())
	}
	return b
}

// checkInput checks an input's size against the model's input tensor.
func checkInput(data []byte, m *model.Model) error {
	in := m.InputTensor()
	if len(data) != in.Bytes() {
		more := ""
		if len(data) > in.Bytes() {
			more = " or more"
		}
		return fmt.Errorf("%d bytes%s, but the model's input %q is %s %v: %d bytes", len(data), more, in.Name, in.DType, in.Dims, in.Bytes())
	}
	return nil
}
