package sched

import (
	"math"
	"testing"

	"github.com/batteryless/harness/boards/profiles"
)

func TestPredict(t *testing.T) {
	prof, err := profiles.Load("msp430fr5994")
	if err != nil {
		t.Fatal(err)
	}
	m := testModels(t)[0]
	for _, name := range []string{"tile", "adaptive"} {
		s, _ := Get(name)
		p, err := s.Schedule(m, prof, Options{})
		if err != nil {
			t.Fatal(err)
		}
		Predict(p, prof, 0)
		sum := 0.0
		for _, lp := range p.Layers {
			sum += lp.PredictedS
		}
		if math.Abs(sum-p.PredictedS) > 1e-9 || p.PredictedS < prof.Seconds(p.Cycles())*0.999 {
			t.Fatalf("%s on continuous power: predicted %.3f s, layers sum to %.3f s, compute %.3f s", name, p.PredictedS, sum, prof.Seconds(p.Cycles()))
		}
		cont := p.PredictedS
		Predict(p, prof, 1e-3)
		if p.PredictedS <= cont {
			t.Fatalf("%s: 1 mW of harvest predicts %.3f s, not longer than continuous power's %.3f s", name, p.PredictedS, cont)
		}
		// Energy-limited: the prediction is at least the energy over the power.
		if p.PredictedS < p.Energy()*0.5/(prof.Power.Efficiency*1e-3) {
			t.Fatalf("%s: %.3f s for %.3g J at 1 mW", name, p.PredictedS, p.Energy())
		}
	}
}
