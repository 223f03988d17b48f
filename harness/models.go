package main

import (
	"fmt"
	"io"
	"os"

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

// loadInput reads an input tensor's raw bytes. With no path, the bundled
// model gets its bundled example input; other models need a file.
func loadInput(path, modelPath string, m *model.Model) ([]byte, error) {
	want := m.InputTensor().Bytes()
	if path == "" {
		if isBundled(modelPath) {
			return bundled.Input(), nil
		}
		return nil, fmt.Errorf("--input is required for %s (raw %s bytes of shape %v, %d bytes)", modelPath, m.InputTensor().DType, m.InputTensor().Dims, want)
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
