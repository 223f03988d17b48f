package firmwaretest

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/batteryless/harness/boards/profiles"
	"github.com/batteryless/harness/boards/sim"
	"github.com/batteryless/harness/harness/bundled"
	"github.com/batteryless/harness/harness/model"
	"github.com/batteryless/harness/harness/plan"
	"github.com/batteryless/harness/harness/sched"
)

// splitJIT is a jit plan of m whose CONV_2D layers split their reductions
// in two steps (tile's tiles otherwise): tasks with partial sums in chunks,
// which jit's own plans of the shared models do not have (a reduction is
// split only when one output value does not fit, and a chunk holds one).
func splitJIT(t *testing.T, m *model.Model, prof *profiles.Profile) *plan.Plan {
	t.Helper()
	s, _ := sched.Get("tile")
	base, err := s.Schedule(m, prof, sched.Options{})
	if err != nil {
		t.Fatal(err)
	}
	p := &plan.Plan{Version: base.Version, Model: base.Model, Profile: base.Profile, Scheduler: "jit", WordBytes: base.WordBytes,
		WeightBytes: base.WeightBytes, Budget: base.Budget, RebootEnergy: base.RebootEnergy}
	for _, lp := range base.Layers {
		q := plan.LayerPlan{Layer: lp.Layer, Op: lp.Op, TileH: lp.TileH, TileW: lp.TileW, TileC: lp.TileC, TileR: lp.TileR, CommitEvery: 1}
		if dim, ok := plan.CanSplit(m.Layers[lp.Layer]); ok && m.Layers[lp.Layer].Op == model.OpConv2D && dim >= 2 {
			q.TileR = (dim + 1) / 2
		}
		p.Layers = append(p.Layers, q)
	}
	if p.Tasks, err = plan.Expand(m, p.Layers); err != nil {
		t.Fatal(err)
	}
	sched.Price(p, m, prof)
	if err := plan.Layout(p, m, plan.LayoutOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := sched.AddJIT(p, m, prof); err != nil {
		t.Fatal(err)
	}
	n := 0
	for i := range p.Tasks {
		if tk := &p.Tasks[i]; tk.Part.Split() && plan.Chunks(tk.Region, p.JIT.ChunkPixels[tk.Layer]) > 1 {
			n++
		}
	}
	if n == 0 {
		t.Fatal("no split step in more than one chunk: the plan covers nothing more")
	}
	return p
}

// jitReadings picks, per task, the readings before its chunks, around the
// threshold vh mV: plenty; just below (a snapshot before the first chunk);
// at it twice then below (at the third chunk, if any); plenty then below
// twice; 0 mV (cannot measure) then below; below twice (a sleep, then the
// next chunk's reading).
func jitReadings(vh uint16, tasks int) map[int][]uint16 {
	out := map[int][]uint16{}
	for i := 0; i < tasks; i++ {
		switch i % 6 {
		case 1:
			out[i] = []uint16{vh - 1}
		case 2:
			out[i] = []uint16{vh, vh, vh - 1}
		case 3:
			out[i] = []uint16{3600, vh - 1, vh - 1}
		case 4:
			out[i] = []uint16{0, vh - 1}
		case 5:
			out[i] = []uint16{vh - 1, vh - 1}
		}
	}
	return out
}

// simJITEvents runs one inference of a jit plan on the simulated board,
// telling it the energies of the readings (per task, in order; 3600 mV
// beyond them: the firmware's energy at that voltage, so a reading below
// the threshold is an energy below plan.JIT.ThresholdJ), and lists its
// snapshots as "jit TASK snapshot CHUNKS".
func simJITEvents(t *testing.T, d deployment, prof *profiles.Profile, readings map[int][]uint16, input []byte) ([]string, []byte) {
	t.Helper()
	p := d.plan
	b, err := sim.New(d.model, p, prof, sim.Faults{})
	if err != nil {
		t.Fatal(err)
	}
	b.PowerOn()
	if err := b.QueueInput(input); err != nil {
		t.Fatal(err)
	}
	energy := func(mv uint16) float64 {
		if mv == 0 {
			return math.Inf(1)
		}
		return sched.ThresholdEnergy(p.Storage, float64(mv)/1000)
	}
	var events []string
	taken := make([]int, len(p.Tasks))
	cur, woke, done, prev := 0, false, false, sim.Idle
	for i := 0; !done; i++ {
		if i > 1000*len(p.Tasks)+100 {
			t.Fatal("the simulated board does not finish")
		}
		mv := uint16(3600)
		if cur < len(p.Tasks) && taken[cur] < len(readings[cur]) {
			mv = readings[cur][taken[cur]]
		}
		seg, ok := b.Next(energy(mv))
		if !ok {
			t.Fatal("the simulated board went idle without finishing the inference")
		}
		// A reading before every chunk: the first one's before the Read;
		// none right after a sleep.
		switch seg.Kind {
		case sim.Checkpoint:
			taken[cur]++
		case sim.Read:
			if !woke {
				taken[cur]++
			}
		case sim.ComputePart, sim.Compute:
			if !woke && prev != sim.Read {
				taken[cur]++
			}
		}
		woke, prev = seg.Kind == sim.Sleep, seg.Kind
		ev := b.Complete()
		if seg.Kind == sim.Checkpoint {
			hdr := b.NVM()[p.JIT.SnapshotOffset:]
			events = append(events, fmt.Sprintf("jit %d snapshot %d", binary.LittleEndian.Uint32(hdr[4:]), binary.LittleEndian.Uint32(hdr[8:])))
		}
		done = ev.InferenceDone
		if seg.Task >= 0 && seg.Kind == sim.Commit {
			cur = seg.Task + 1
		}
	}
	return events, append([]byte(nil), b.NVM()...)
}

var jitEventRE = regexp.MustCompile(`(?m)^jit \d+ snapshot \d+$`)

type jitCase struct {
	name    string
	m       *model.Model
	input   []byte
	profile string
	split   bool // splitJIT's plan instead of the jit scheduler's
}

func jitCases(t *testing.T) []jitCase {
	cases := []jitCase{
		{"bundled/msp430fr5994", bundledModel(t), bundled.Input(), "msp430fr5994", false},
		{"bundled/qemu-stm32", bundledModel(t), bundled.Input(), "qemu-stm32", false},
		{"bundled/msp430fr5994/split", bundledModel(t), bundled.Input(), "msp430fr5994", true},
		{"bundled/qemu-stm32/split", bundledModel(t), bundled.Input(), "qemu-stm32", true},
	}
	if _, err := os.Stat(filepath.Join(sharedData, "models", "kws_dscnn_int8.tflite")); err == nil {
		m, err := model.Load(filepath.Join(sharedData, "models", "kws_dscnn_int8.tflite"))
		if err != nil {
			t.Fatal(err)
		}
		input, err := os.ReadFile(filepath.Join(sharedData, "inputs", "kws_ref_input0_int8.bin"))
		if err != nil {
			t.Fatal(err)
		}
		cases = append(cases, jitCase{"kws/msp430fr5994", m, input, "msp430fr5994", false}, jitCase{"kws/qemu-stm32", m, input, "qemu-stm32", false})
	} else {
		t.Logf("KWS left out: %v", err)
	}
	return cases
}

func (c jitCase) deploy(t *testing.T) (deployment, *profiles.Profile) {
	t.Helper()
	prof, err := profiles.Load(c.profile)
	if err != nil {
		t.Fatal(err)
	}
	var p *plan.Plan
	if c.split {
		p = splitJIT(t, c.m, prof)
	} else {
		s, _ := sched.Get("jit")
		if p, err = s.Schedule(c.m, prof, sched.Options{}); err != nil {
			t.Fatal(err)
		}
	}
	return deployPlan(t, c.m, c.input, prof, p), prof
}

// TestJITParity gives the same supply readings to the C runtime's
// just-in-time checkpoints (runplan --supply) and, as energies, to the
// simulated board's: the snapshots come before the same chunks of the
// same tasks, in the same order, and the output and the final NVM,
// snapshot area included (the same bytes written), are the same.
func TestJITParity(t *testing.T) {
	runplan := bin(t, "runplan")
	for _, c := range jitCases(t) {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			d, prof := c.deploy(t)
			vh := uint16(math.Round(d.plan.JIT.ThresholdV * 1000))
			readings := jitReadings(vh, len(d.plan.Tasks))
			supply := filepath.Join(t.TempDir(), "supply.txt")
			writeReadings(t, supply, readings)
			simEvents, simNVM := simJITEvents(t, d, prof, readings, c.input)
			withVerifiedCRC(simNVM, d.imageBytes)

			nvmOut := filepath.Join(t.TempDir(), "nvm.bin")
			r := run(t, runplan, d.image, d.input, "--supply", supply, "--nvm-out", nvmOut)
			if r.code != 0 || strings.TrimSpace(r.stdout) != d.want {
				t.Fatalf("exit %d, output %q, want %q\n%s", r.code, strings.TrimSpace(r.stdout), d.want, r.stderr)
			}
			cEvents := jitEventRE.FindAllString(r.stderr, -1)
			if !slices.Equal(cEvents, simEvents) {
				t.Errorf("the C runtime's snapshots and the simulated board's differ:\n C   %v\n sim %v", cEvents, simEvents)
			}
			mid := 0
			for _, e := range simEvents {
				if !strings.HasSuffix(e, " 0") {
					mid++
				}
			}
			if len(simEvents) == 0 || mid == 0 {
				t.Errorf("%d snapshots, %d inside a task: the readings do not exercise the checkpoints", len(simEvents), mid)
			}
			nvm, err := os.ReadFile(nvmOut)
			if err != nil {
				t.Fatal(err)
			}
			if diff := nvmDiff(d.plan, nvm, simNVM); diff != "" {
				t.Errorf("final NVM differs from the simulated board's: %s", diff)
			}
			st := parseStats(t, r.stderr)
			t.Logf("%d tasks, threshold %.3f V, %d snapshots (%d inside a task), the same in C and on the simulated board; %s", len(d.plan.Tasks), d.plan.JIT.ThresholdV, len(simEvents), mid, strings.TrimSpace(r.stderr[strings.LastIndex(r.stderr, "runplan:"):]))
			if st.snapshots != len(simEvents) {
				t.Errorf("runplan counts %d snapshots, its events %d", st.snapshots, len(simEvents))
			}
		})
	}
}

// TestJITBrownOuts runs jit plans on the C runtime with the supply empty
// twice every other task (snapshots and sleeps) and brown-outs at every
// task boundary, inside every task and at random NVM words (inside
// snapshots too): the output is the reference's, NVM outside the snapshot
// area the simulated board's, and the boot restored snapshots.
func TestJITBrownOuts(t *testing.T) {
	runplan := bin(t, "runplan")
	for _, c := range jitCases(t) {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			d, prof := c.deploy(t)
			at := d.plan.JIT.SnapshotOffset
			nvmOut := filepath.Join(t.TempDir(), "nvm.bin")
			restores := 0
			for _, mode := range runModes {
				args := append([]string{d.image, d.input, "--droop", "2", "--nvm-out", nvmOut}, mode.args...)
				r := run(t, runplan, args...)
				if r.code != 0 || strings.TrimSpace(r.stdout) != d.want {
					t.Fatalf("%s: exit %d, output %q, want %q\n%s", mode.name, r.code, strings.TrimSpace(r.stdout), d.want, r.stderr)
				}
				nvm, err := os.ReadFile(nvmOut)
				if err != nil {
					t.Fatal(err)
				}
				if len(nvm) != len(d.simNVM) || !bytes.Equal(nvm[plan.HeaderBytes:at], d.simNVM[plan.HeaderBytes:at]) {
					t.Errorf("%s: NVM outside the header and the snapshot area differs from the simulated board's", mode.name)
				}
				st := parseStats(t, r.stderr)
				if st.snapshots == 0 {
					t.Errorf("%s: no snapshot: the drooping supply does not reach the checkpoints", mode.name)
				}
				restores += st.restores
				t.Logf("%s: %s", mode.name, strings.TrimSpace(r.stderr))
			}
			if restores == 0 {
				t.Error("no boot restored a snapshot in any mode")
			}
			// The simulated board under the same kind of abuse (the split
			// plans' partial sums restored too).
			for seed := uint64(1); seed <= 4; seed++ {
				out, restored := simJITBrownOuts(t, d, prof, seed)
				if hex.EncodeToString(out) != d.want {
					t.Errorf("simulated board, seed %d: output %x, want %s", seed, out, d.want)
				}
				if restored == 0 {
					t.Errorf("simulated board, seed %d: no restore", seed)
				}
			}
		})
	}
}

// simJITBrownOuts runs one inference of a jit plan on the simulated board
// with the supply below the threshold before a fifth of its segments and a
// brown-out cutting one in twenty (at a random fraction); it returns the
// output and the restores.
func simJITBrownOuts(t *testing.T, d deployment, prof *profiles.Profile, seed uint64) ([]byte, int) {
	t.Helper()
	b, err := sim.New(d.model, d.plan, prof, sim.Faults{})
	if err != nil {
		t.Fatal(err)
	}
	input, err := os.ReadFile(d.input)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.QueueInput(input); err != nil {
		t.Fatal(err)
	}
	rng := rand.New(rand.NewPCG(seed, 11))
	b.PowerOn()
	restores := 0
	for i := 0; i < 1000*len(d.plan.Tasks)+1000; i++ {
		avail := math.Inf(1)
		if rng.IntN(5) == 0 {
			avail = 0
		}
		seg, ok := b.Next(avail)
		if !ok {
			t.Fatal("the simulated board went idle without finishing the inference")
		}
		if rng.IntN(20) == 0 {
			b.BrownOut(rng.Float64())
			b.PowerOn()
			continue
		}
		if seg.Kind == sim.Restore {
			restores++
		}
		if b.Complete().InferenceDone {
			return append([]byte(nil), b.Output()...), restores
		}
	}
	t.Fatal("the simulated board does not finish")
	return nil, 0
}
