// Package vectors reads bit-exact operator test vectors (one JSON file per
// case: inputs, parameters and the output TFLite's reference kernels
// computed) and runs them through the reference kernels.
//
// The format is the one of ../shared/data/vectors/README.md: {"op", "case",
// "source", "params": {name: int|string|bool}, "tensors": {name: {"dtype",
// "shape", "data"}}}.
package vectors

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// MaxFileBytes bounds one vector file; larger files are refused unread.
const MaxFileBytes = 64 << 20

// Tensor is one named tensor of a case.
type Tensor struct {
	DType string  `json:"dtype"`
	Shape []int   `json:"shape"`
	Data  []int64 `json:"data"`
}

// Case is one test vector.
type Case struct {
	Path    string                     `json:"-"`
	Op      string                     `json:"op"`
	Name    string                     `json:"case"`
	Source  string                     `json:"source"`
	Params  map[string]json.RawMessage `json:"params"`
	Tensors map[string]*Tensor         `json:"tensors"`
}

var dtypeRange = map[string][2]int64{
	"int8":  {-128, 127},
	"int16": {-32768, 32767},
	"int32": {-1 << 31, 1<<31 - 1},
	"int64": {-1 << 63, 1<<63 - 1},
}

// Parse decodes and validates one case. name is used in error messages.
func Parse(data []byte, name string) (*Case, error) {
	var c Case
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&c); err != nil {
		return nil, fmt.Errorf("%s: %w", name, jsonErr(data, err))
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, fmt.Errorf("%s: trailing data after the JSON object", name)
	}
	c.Path = name
	if c.Op == "" {
		return nil, fmt.Errorf("%s: field \"op\" is missing", name)
	}
	if c.Tensors == nil {
		return nil, fmt.Errorf("%s: field \"tensors\" is missing", name)
	}
	names := make([]string, 0, len(c.Tensors))
	for n := range c.Tensors {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		t := c.Tensors[n]
		if t == nil {
			return nil, fmt.Errorf("%s: tensors.%s is null", name, n)
		}
		rng, ok := dtypeRange[t.DType]
		if !ok {
			return nil, fmt.Errorf("%s: tensors.%s.dtype %q is not one of int8, int16, int32, int64", name, n, t.DType)
		}
		elems := 1
		for i, d := range t.Shape {
			if d < 0 || d > 1<<24 {
				return nil, fmt.Errorf("%s: tensors.%s.shape[%d] = %d is out of range", name, n, i, d)
			}
			elems *= d
			if elems > 1<<28 {
				return nil, fmt.Errorf("%s: tensors.%s.shape %v has too many elements", name, n, t.Shape)
			}
		}
		if elems != len(t.Data) {
			return nil, fmt.Errorf("%s: tensors.%s has %d values but shape %v needs %d", name, n, len(t.Data), t.Shape, elems)
		}
		for i, v := range t.Data {
			if v < rng[0] || v > rng[1] {
				return nil, fmt.Errorf("%s: tensors.%s.data[%d] = %d does not fit %s", name, n, i, v, t.DType)
			}
		}
	}
	return &c, nil
}

// jsonErr adds the line number to a JSON syntax or type error.
func jsonErr(data []byte, err error) error {
	var off int64 = -1
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		off = se.Offset
	case errors.As(err, &te):
		off = te.Offset
	}
	if off < 0 || off > int64(len(data)) {
		return err
	}
	line := 1 + bytes.Count(data[:off], []byte("\n"))
	return fmt.Errorf("line %d: %w", line, err)
}

// Load reads and parses one vector file.
func Load(path string) (*Case, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() > MaxFileBytes {
		return nil, fmt.Errorf("%s: %d bytes is larger than the %d-byte limit for a vector file", path, st.Size(), MaxFileBytes)
	}
	data, err := io.ReadAll(io.LimitReader(f, MaxFileBytes+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(data) > MaxFileBytes {
		return nil, fmt.Errorf("%s: larger than the %d-byte limit for a vector file", path, MaxFileBytes)
	}
	return Parse(data, path)
}

// Find lists every *.json file under dir, sorted.
func Find(dir string) ([]string, error) {
	var paths []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() && strings.HasSuffix(p, ".json") {
			paths = append(paths, p)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Strings(paths)
	if len(paths) == 0 {
		return nil, fmt.Errorf("%s: no *.json vector files", dir)
	}
	return paths, nil
}

// Int returns an integer parameter.
func (c *Case) Int(name string) (int, error) {
	raw, ok := c.Params[name]
	if !ok {
		return 0, fmt.Errorf("%s: params.%s is missing", c.Path, name)
	}
	var v int64
	if err := json.Unmarshal(raw, &v); err != nil {
		return 0, fmt.Errorf("%s: params.%s: %s is not an integer", c.Path, name, raw)
	}
	if v < -1<<31 || v > 1<<31-1 {
		return 0, fmt.Errorf("%s: params.%s = %d is out of range", c.Path, name, v)
	}
	return int(v), nil
}

// Has reports whether a parameter is present.
func (c *Case) Has(name string) bool { _, ok := c.Params[name]; return ok }

// Tensor returns a tensor checked for dtype and element count.
func (c *Case) Tensor(name, dtype string, elems int) (*Tensor, error) {
	t, ok := c.Tensors[name]
	if !ok {
		return nil, fmt.Errorf("%s: tensors.%s is missing", c.Path, name)
	}
	if t.DType != dtype {
		return nil, fmt.Errorf("%s: tensors.%s is %s, want %s", c.Path, name, t.DType, dtype)
	}
	if elems >= 0 && len(t.Data) != elems {
		return nil, fmt.Errorf("%s: tensors.%s has %d values, the params need %d", c.Path, name, len(t.Data), elems)
	}
	return t, nil
}

// Int8s returns the tensor's values as int8.
func (t *Tensor) Int8s() []int8 {
	out := make([]int8, len(t.Data))
	for i, v := range t.Data {
		out[i] = int8(v)
	}
	return out
}

// Int32s returns the tensor's values as int32.
func (t *Tensor) Int32s() []int32 {
	out := make([]int32, len(t.Data))
	for i, v := range t.Data {
		out[i] = int32(v)
	}
	return out
}
