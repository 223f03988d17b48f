package sim

import (
	"bytes"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/batteryless/harness/boards/profiles"
	"github.com/batteryless/harness/harness/bundled"
	"github.com/batteryless/harness/harness/model"
	"github.com/batteryless/harness/harness/plan"
	"github.com/batteryless/harness/harness/refexec"
	"github.com/batteryless/harness/harness/sched"
	"github.com/batteryless/harness/harness/testenv"
)

// jitRun drives a jit plan's board through one inference: before each
// segment the supply reads low (0 J) with probability low, else plenty,
// and a brown-out cuts the segment with probability brown. It returns the
// output and how many checkpoints and restores ran to their end.
func jitRun(t *testing.T, b *Board, input []byte, rng *rand.Rand, low, brown float64) (out []byte, checkpoints, restores, brownouts int) {
	t.Helper()
	if err := b.QueueInput(input); err != nil {
		t.Fatal(err)
	}
	b.PowerOn()
	for i := 0; i < 5_000_000; i++ {
		avail := math.Inf(1)
		if rng.Float64() < low {
			avail = 0
		}
		seg, ok := b.Next(avail)
		if !ok {
			t.Fatal("idle before the inference finished")
		}
		if rng.Float64() < brown {
			b.BrownOut(rng.Float64())
			b.PowerOn()
			brownouts++
			continue
		}
		ev := b.Complete()
		switch seg.Kind {
		case Checkpoint:
			checkpoints++
		case Restore:
			restores++
		}
		if ev.InferenceDone {
			return append([]byte(nil), b.Output()...), checkpoints, restores, brownouts
		}
	}
	t.Fatal("the inference did not finish")
	return nil, 0, 0, 0
}

// TestJITUnderBrownOuts runs jit plans with the supply often below the
// threshold (checkpoints and sleeps) and brown-outs cutting every kind of
// segment (checkpoints, restores, chunks, sleeps included): the output is
// the reference's, and NVM outside the snapshot area the same as a run
// without any; restores happened.
func TestJITUnderBrownOuts(t *testing.T) {
	type modelCase struct {
		m     *model.Model
		input []byte
	}
	bm, err := model.Parse(bundled.Model(), bundled.ModelName)
	if err != nil {
		t.Fatal(err)
	}
	cases := []modelCase{{bm, bundled.Input()}}
	if !testing.Short() {
		dir := "../../../shared/data"
		testenv.SharedData(t, filepath.Join(dir, "models"))
		km, err := model.Load(filepath.Join(dir, "models", "kws_dscnn_int8.tflite"))
		if err != nil {
			t.Fatal(err)
		}
		in, err := os.ReadFile(filepath.Join(dir, "inputs", "kws_ref_input0_int8.bin"))
		if err != nil {
			t.Fatal(err)
		}
		cases = append(cases, modelCase{km, in})
	}
	s, _ := sched.Get("jit")
	for _, c := range cases {
		ref, err := refexec.New(c.m).Run(c.input)
		if err != nil {
			t.Fatal(err)
		}
		for _, pn := range []string{"msp430fr5994", "qemu-stm32"} {
			prof, err := profiles.Load(pn)
			if err != nil {
				t.Fatal(err)
			}
			p, err := s.Schedule(c.m, prof, sched.Options{})
			if err != nil {
				t.Fatal(err)
			}
			split := false
			for i := range p.Tasks {
				split = split || p.Tasks[i].Part.Split()
			}
			clean, err := New(c.m, p, prof, Faults{})
			if err != nil {
				t.Fatal(err)
			}
			cleanOut, _, _, _ := jitRun(t, clean, c.input, rand.New(rand.NewPCG(0, 0)), 0, 0)
			if !bytes.Equal(cleanOut, ref) {
				t.Fatalf("%s/%s: without brown-outs the output differs from the reference", c.m.Name, pn)
			}
			for seed := uint64(1); seed <= 3; seed++ {
				for _, memo := range []bool{true, false} {
					b, err := New(c.m, p, prof, Faults{})
					if err != nil {
						t.Fatal(err)
					}
					b.SetMemo(memo)
					out, cps, rs, bos := jitRun(t, b, c.input, rand.New(rand.NewPCG(seed, 7)), 0.2, 0.05)
					if !bytes.Equal(out, ref) {
						t.Errorf("%s/%s seed %d memo %t: output differs from the reference", c.m.Name, pn, seed, memo)
					}
					at := p.JIT.SnapshotOffset
					if !bytes.Equal(b.NVM()[plan.HeaderBytes:at], clean.NVM()[plan.HeaderBytes:at]) {
						t.Errorf("%s/%s seed %d memo %t: NVM outside the header and the snapshot area differs from a run without brown-outs", c.m.Name, pn, seed, memo)
					}
					if cps == 0 || rs == 0 {
						t.Errorf("%s/%s seed %d: %d checkpoints, %d restores, %d brown-outs: the run does not exercise the snapshot", c.m.Name, pn, seed, cps, rs, bos)
					}
					if seed == 1 && memo {
						t.Logf("%s/%s (%d tasks, split reductions %t): %d checkpoints, %d restores, %d brown-outs", c.m.Name, pn, len(p.Tasks), split, cps, rs, bos)
					}
				}
			}
		}
	}
}
