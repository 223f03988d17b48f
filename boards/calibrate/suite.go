package calibrate

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"github.com/batteryless/harness/boards/profiles"
	"github.com/batteryless/harness/harness/model"
	"github.com/batteryless/harness/harness/plan"
	"github.com/batteryless/harness/harness/refexec"
	"github.com/batteryless/harness/harness/sched"
	"github.com/batteryless/harness/harness/tflite"
)

// Image is one microbenchmark: a model, its plan for the profile being
// calibrated, the plan image a board runs, an input and the reference
// executor's output for it.
type Image struct {
	Name  string
	Model *model.Model
	Plan  *plan.Plan
	Bytes []byte // the plan image (harness/plan/FORMAT.md)
	Input []byte
	Want  []byte // refexec's output: a run that computes anything else is an error
}

// MaxRegionBytes is the largest output region of one task the firmware's
// SRAM buffer takes (IH_SRAM_OUT_BYTES in firmware/Makefile).
const MaxRegionBytes = 16384

// MaxNVMBytes bounds a benchmark's NVM (the STM32 port's NVM region: 64 KiB).
const MaxNVMBytes = 64 << 10

// chain is a benchmark model: a chain of layers, and how it is scheduled
// (nil: the tile scheduler; else the per-layer tiles and commit intervals).
type chain struct {
	name  string
	build func() *net
	tiles func(m *model.Model) []plan.LayerPlan
}

// chains are the microbenchmarks. Each kernel the firmware runs appears at
// several sizes (so that its per-task, per-output, per-tap and per-element
// costs separate) and at several layer indices (the runtime's layer scan);
// every layer's output fits the firmware's 16 KiB region buffer. The last
// one cuts reshapes into tiles of other shapes, with commits every few
// tasks: tasks without a commit, and outputs written in many runs, isolate
// the NVM write and commit costs.
var chains = []chain{
	{name: "conv", build: func() *net {
		return newNet("conv", 1, 1, 16, 16, 1).
			conv(3, 3, 1, 8, true, tflite.ActRelu).
			conv(1, 1, 1, 24, false, tflite.ActNone).
			conv(3, 3, 2, 16, true, tflite.ActRelu).
			conv(3, 3, 1, 32, false, tflite.ActRelu).
			conv(1, 1, 1, 6, false, tflite.ActNone).
			conv(5, 5, 1, 12, true, tflite.ActRelu).
			conv(3, 3, 1, 20, true, tflite.ActRelu).
			conv(1, 1, 1, 48, false, tflite.ActRelu).
			conv(3, 3, 2, 8, false, tflite.ActNone).
			conv(1, 1, 1, 4, false, tflite.ActRelu).
			conv(3, 3, 1, 64, true, tflite.ActRelu).
			conv(1, 1, 1, 16, false, tflite.ActNone)
	}},
	{name: "conv-wide", build: func() *net {
		return newNet("conv-wide", 2, 1, 24, 24, 1).
			conv(3, 3, 1, 4, true, tflite.ActRelu).
			conv(3, 3, 1, 8, false, tflite.ActRelu).
			conv(1, 1, 1, 12, false, tflite.ActRelu).
			conv(3, 3, 2, 24, true, tflite.ActRelu).
			conv(3, 3, 1, 32, true, tflite.ActRelu).
			conv(1, 1, 1, 64, false, tflite.ActNone).
			conv(1, 1, 1, 8, false, tflite.ActRelu).
			conv(3, 3, 1, 16, true, tflite.ActRelu)
	}},
	{name: "depthwise", build: func() *net {
		return newNet("depthwise", 3, 1, 24, 24, 1).
			conv(1, 1, 1, 8, false, tflite.ActNone).
			depthwise(3, 1, true).
			depthwise(3, 2, true).
			conv(1, 1, 1, 32, false, tflite.ActRelu).
			depthwise(3, 1, false).
			depthwise(5, 1, true).
			depthwise(3, 2, false).
			conv(1, 1, 1, 16, false, tflite.ActRelu).
			depthwise(3, 1, true).
			conv(1, 1, 1, 64, false, tflite.ActNone).
			depthwise(3, 1, true).
			depthwise(2, 2, false)
	}},
	{name: "pool", build: func() *net {
		return newNet("pool", 4, 1, 24, 24, 1).
			conv(1, 1, 1, 4, false, tflite.ActNone).
			pool(true, 2, 2, false).
			pool(false, 3, 1, true).
			conv(1, 1, 1, 16, false, tflite.ActNone).
			pool(true, 3, 1, true).
			pool(false, 2, 2, false).
			conv(1, 1, 1, 48, false, tflite.ActNone).
			pool(true, 2, 2, false).
			pool(false, 3, 1, true).
			pool(true, 3, 2, false).
			conv(1, 1, 1, 8, false, tflite.ActNone).
			pool(false, 1, 1, false)
	}},
	{name: "pool-big", build: func() *net {
		return newNet("pool-big", 5, 1, 24, 24, 1).
			conv(1, 1, 1, 16, false, tflite.ActNone).
			pool(false, 2, 2, false).
			pool(true, 2, 1, true).
			pool(false, 4, 4, false).
			pool(true, 3, 1, true).
			pool(false, 3, 3, false)
	}},
	{name: "fc", build: func() *net {
		return newNet("fc", 6, 1, 256).
			fc(64).
			fc(128).
			fc(16).
			fc(512).
			fc(10).
			softmax().
			fc(32).
			softmax().
			fc(200).
			fc(4)
	}},
	{name: "elementwise", build: func() *net {
		return newNet("elementwise", 7, 1, 8, 8, 4).
			conv(1, 1, 1, 32, false, tflite.ActNone).
			reshape(1, 16, 16, 8).
			add().
			mul().
			reshape(1, 16, 8, 16).
			requantize(0).
			add().
			pool(true, 2, 2, false).
			mul().
			add().
			reshape(1, 4, 4, 32).
			conv(1, 1, 1, 32, false, tflite.ActNone).
			softmax().
			reshape(1, 512).
			requantize(0).
			add().
			mul().
			reshape(1, 8, 8, 8).
			conv(1, 1, 1, 8, false, tflite.ActNone).
			softmax().
			reshape(1, 8, 4, 16).
			conv(1, 1, 1, 16, false, tflite.ActNone).
			softmax().
			requantize(0).
			fc(16)
	}},
	{name: "small", build: func() *net {
		return newNet("small", 9, 1, 2, 2, 4).
			add().
			mul().
			reshape(1, 16).
			requantize(0).
			reshape(1, 1, 1, 16).
			conv(1, 1, 1, 8, false, tflite.ActNone).
			reshape(1, 2, 2, 2).
			depthwise(3, 1, true).
			pool(true, 2, 2, false).
			reshape(1, 2).
			add().
			reshape(1, 1, 1, 2).
			pool(false, 1, 1, false).
			conv(1, 1, 1, 32, false, tflite.ActNone).
			reshape(1, 32).
			fc(3).
			softmax().
			requantize(0).
			reshape(1, 1, 1, 3).
			conv(3, 3, 1, 5, true, tflite.ActNone).
			fc(6)
	}},
	// The shapes of the shared models the harness is held to (the MLPerf
	// Tiny KWS DS-CNN and IC ResNet-8): their first layers' odd kernels on
	// few channels, depthwise and pointwise convolutions on a 25 x 5 map,
	// a whole-map average pool, stride-2 3 x 3 and 1 x 1 convolutions,
	// the residual adds, a 10- or 12-way classifier.
	{name: "kws-shapes", build: func() *net {
		return newNet("kws-shapes", 10, 1, 49, 10, 1).
			conv(10, 4, 2, 64, true, tflite.ActRelu).
			depthwise(3, 1, true).
			conv(1, 1, 1, 64, false, tflite.ActRelu).
			depthwise(3, 1, true).
			conv(1, 1, 1, 64, false, tflite.ActRelu).
			poolRect(false, 25, 5, 1, false).
			reshape(1, 64).
			fc(12).
			softmax()
	}},
	{name: "ic-shapes", build: func() *net {
		return newNet("ic-shapes", 11, 1, 32, 32, 3).
			conv(3, 3, 1, 16, true, tflite.ActRelu).
			conv(3, 3, 1, 16, true, tflite.ActRelu).
			add().
			conv(3, 3, 2, 32, true, tflite.ActRelu).
			conv(3, 3, 1, 32, true, tflite.ActNone).
			add().
			conv(1, 1, 2, 64, false, tflite.ActNone).
			conv(3, 3, 1, 64, true, tflite.ActRelu).
			add().
			poolRect(false, 8, 8, 1, false).
			reshape(1, 64).
			fc(10).
			softmax()
	}},
	{name: "nvm", build: func() *net {
		n := newNet("nvm", 8, 1, 16, 16, 1).conv(1, 1, 1, 16, false, tflite.ActNone)
		for range 6 {
			n.reshape(1, 16, 16, 16)
		}
		return n
	}, tiles: func(m *model.Model) []plan.LayerPlan {
		// Tile h x w x c and commit interval per layer. No tile of some
		// columns and all channels: the firmware writes those position by
		// position (write_region), which plan.Spans counts as one run per
		// row.
		shapes := [][4]int{{16, 16, 16, 1}, {16, 16, 16, 1}, {4, 16, 16, 2}, {16, 16, 4, 4}, {16, 16, 8, 3}, {16, 16, 1, 5}, {2, 16, 16, 8}}
		lps := make([]plan.LayerPlan, len(m.Layers))
		for i, l := range m.Layers {
			s := shapes[i%len(shapes)]
			lps[i] = plan.LayerPlan{Layer: l.Index, Op: l.Op.String(), TileH: s[0], TileW: s[1], TileC: s[2], CommitEvery: s[3]}
		}
		return lps
	}},
}

// Suite builds the microbenchmarks for a profile: each model scheduled
// with the tile scheduler for prof (the last one with fixed tiles), its
// plan image, input and reference output.
func Suite(prof *profiles.Profile) ([]*Image, error) {
	var imgs []*Image
	for _, c := range chains {
		img, err := c.image(prof)
		if err != nil {
			return nil, fmt.Errorf("calibrate: benchmark %s: %w", c.name, err)
		}
		imgs = append(imgs, img)
	}
	return imgs, nil
}

func (c chain) image(prof *profiles.Profile) (*Image, error) {
	n := c.build()
	input := n.input()
	data, err := n.encode()
	if err != nil {
		return nil, err
	}
	m, err := model.Parse(data, "calibrate:"+c.name)
	if err != nil {
		return nil, err
	}
	var p *plan.Plan
	if c.tiles == nil {
		s, err := sched.Get("tile")
		if err != nil {
			return nil, err
		}
		p, err = s.Schedule(m, prof, sched.Options{ModelBytes: data})
		if err != nil {
			return nil, err
		}
	} else if p, err = fixedPlan(m, prof, data, c.tiles(m)); err != nil {
		return nil, err
	}
	return newImage(c.name, m, p, input)
}

// newImage encodes a plan and computes the reference output, after
// checking that the firmware can run it.
func newImage(name string, m *model.Model, p *plan.Plan, input []byte) (*Image, error) {
	for i, t := range p.Tasks {
		out := m.Tensors[m.Layers[t.Layer].Output]
		if b := t.Region.Elems() * out.DType.Size(); b > MaxRegionBytes {
			return nil, fmt.Errorf("task %d writes a region of %d bytes, more than the firmware's %d-byte buffer", i, b, MaxRegionBytes)
		}
	}
	if p.NVMBytes > MaxNVMBytes {
		return nil, fmt.Errorf("needs %d bytes of NVM, more than the %d of the smallest port", p.NVMBytes, MaxNVMBytes)
	}
	img, err := plan.EncodeImage(m, p)
	if err != nil {
		return nil, err
	}
	want, err := refexec.New(m).Run(input)
	if err != nil {
		return nil, err
	}
	return &Image{Name: name, Model: m, Plan: p, Bytes: img, Input: input, Want: want}, nil
}

// fixedPlan makes a plan of given per-layer tiles and commit intervals,
// priced for prof, as the schedulers do.
func fixedPlan(m *model.Model, prof *profiles.Profile, modelBytes []byte, layers []plan.LayerPlan) (*plan.Plan, error) {
	p := &plan.Plan{
		Version: plan.Version, Model: m.Name, Profile: prof.Name, Scheduler: "calibrate",
		WordBytes: prof.WordBytes, WeightBytes: m.WeightBytes(),
		Budget: prof.CycleBudget(), RebootEnergy: prof.Reboot.Energy,
		Layers: layers,
	}
	if modelBytes != nil {
		sum := sha256.Sum256(modelBytes)
		p.ModelHash = hex.EncodeToString(sum[:])
	}
	tasks, err := plan.Expand(m, p.Layers)
	if err != nil {
		return nil, err
	}
	p.Tasks = tasks
	sched.Price(p, m, prof)
	if err := plan.Layout(p, m, plan.LayoutOptions{}); err != nil {
		return nil, err
	}
	return p, p.Validate()
}
