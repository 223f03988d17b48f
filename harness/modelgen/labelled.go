package modelgen

import "fmt"

// Labelled is one input of a generated labelled set: the int8 input
// tensor's raw bytes and its label.
type Labelled struct {
	Input []byte
	Label int
}

// LabelledSet makes n inputs for the model of cfg, drawn like its
// calibration images from their own random stream, each labelled with the
// float network's top class on the float image (the lowest index on a tie).
// It is the project's own labelled set for testing accuracy measurement:
// the int8 model's accuracy on it is its agreement with the float model it
// was quantized from, not an accuracy on real data. The same cfg and n give
// the same set on every machine.
func LabelledSet(cfg Config, n int) ([]Labelled, error) {
	if n < 0 {
		return nil, fmt.Errorf("modelgen: %d labelled inputs", n)
	}
	g, err := generate(cfg)
	if err != nil {
		return nil, err
	}
	r := newRNG(cfg.Seed, streamLabelled)
	set := make([]Labelled, n)
	for i := range set {
		img := r.image()
		outs := g.net.forward(img)
		probs := outs[len(outs)-1]
		best := 0
		for c, p := range probs {
			if p > probs[best] {
				best = c
			}
		}
		in := make([]byte, len(img))
		for j, v := range img {
			in[j] = byte(g.inQuant.quantize(v))
		}
		set[i] = Labelled{Input: in, Label: best}
	}
	return set, nil
}
