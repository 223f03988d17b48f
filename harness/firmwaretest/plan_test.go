package firmwaretest

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/batteryless/harness/boards/profiles"
	"github.com/batteryless/harness/boards/sim"
	"github.com/batteryless/harness/harness/bundled"
	"github.com/batteryless/harness/harness/model"
	"github.com/batteryless/harness/harness/plan"
	"github.com/batteryless/harness/harness/refexec"
	"github.com/batteryless/harness/harness/sched"
)

// deployment is a plan image and an input written to a directory, with the
// reference output.
type deployment struct {
	image, input string
	want         string // hex of refexec's output
	plan         *plan.Plan
	imageBytes   []byte
	simNVM       []byte // the simulated board's NVM after the inference
	model        *model.Model
}

// simulate runs one inference on the simulated board (boards/sim), with no
// power model and no fault, and returns its final NVM image.
func simulate(t *testing.T, m *model.Model, p *plan.Plan, prof *profiles.Profile, input []byte) []byte {
	t.Helper()
	b, err := sim.New(m, p, prof, sim.Faults{})
	if err != nil {
		t.Fatal(err)
	}
	b.PowerOn()
	if err := b.QueueInput(input); err != nil {
		t.Fatal(err)
	}
	done := false
	for i := 0; ; i++ {
		if _, ok := b.Next(math.Inf(1)); !ok {
			break
		}
		if ev := b.Complete(); ev.InferenceDone {
			done = true
		}
		if i > 100*len(p.Tasks)+100 {
			t.Fatal("the simulated board does not finish")
		}
	}
	if !done {
		t.Fatal("the simulated board went idle without finishing the inference")
	}
	return append([]byte(nil), b.NVM()...)
}

// nvmDiff says where two NVM images first differ, naming the activation or
// partial-sum area ("" when equal).
// withVerifiedCRC writes into a simulated board's final NVM the record the
// firmware's first boot leaves (plan.VerifiedCRCOffset): the image's CRC
// field, which the simulated board, running a plan and not an image, does
// not write.
func withVerifiedCRC(simNVM, image []byte) {
	copy(simNVM[plan.VerifiedCRCOffset:plan.VerifiedCRCOffset+4], image[12:16])
}

func nvmDiff(p *plan.Plan, got, want []byte) string {
	if bytes.Equal(got, want) {
		return ""
	}
	if len(got) != len(want) {
		return fmt.Sprintf("NVM of %d bytes, the simulated board's has %d", len(got), len(want))
	}
	n, first := 0, -1
	for i := range got {
		if got[i] != want[i] {
			if first < 0 {
				first = i
			}
			n++
		}
	}
	where := "the header"
	for _, a := range p.Activations {
		if first >= a.Offset && first < a.Offset+a.Bytes {
			where = fmt.Sprintf("tensor %d (NVM %d+%d)", a.Tensor, a.Offset, a.Bytes)
		}
	}
	for _, lp := range p.Layers {
		if lp.PartialSlots > 0 && first >= lp.PartialBase && first < lp.PartialBase+lp.PartialSlots*lp.PartialSlotBytes {
			where = fmt.Sprintf("the partial-sum slots of layer %d", lp.Layer)
		}
	}
	return fmt.Sprintf("%d bytes differ, the first at NVM offset %d in %s: %#02x, the simulated board has %#02x", n, first, where, got[first], want[first])
}

func deploy(t *testing.T, m *model.Model, input []byte, scheduler string) deployment {
	t.Helper()
	return deployOn(t, m, input, "msp430fr5994", scheduler)
}

func deployOn(t *testing.T, m *model.Model, input []byte, profile, scheduler string) deployment {
	t.Helper()
	prof, err := profiles.Load(profile)
	if err != nil {
		t.Fatal(err)
	}
	s, err := sched.Get(scheduler)
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.Schedule(m, prof, sched.Options{})
	if err != nil {
		t.Fatalf("%s: %v", scheduler, err)
	}
	return deployPlan(t, m, input, prof, p)
}

// deployPlan writes plan p's image and the input, with the reference
// output and the simulated board's final NVM.
func deployPlan(t *testing.T, m *model.Model, input []byte, prof *profiles.Profile, p *plan.Plan) deployment {
	t.Helper()
	img, err := plan.EncodeImage(m, p)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := refexec.New(m).Run(input)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	d := deployment{image: filepath.Join(dir, "plan.img"), input: filepath.Join(dir, "input.bin"),
		want: hex.EncodeToString(ref), plan: p, imageBytes: img, model: m}
	d.simNVM = simulate(t, m, p, prof, input)
	// The firmware's first boot checks the image's CRC and records the
	// image's CRC field in the NVM header (plan.VerifiedCRCOffset), so
	// that later boots skip the check; the simulated board runs the plan,
	// not an image, and leaves the word 0. The firmware's final NVM must
	// hold exactly that field there, and the simulated board's the rest.
	withVerifiedCRC(d.simNVM, img)
	if err := os.WriteFile(d.image, img, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(d.input, input, 0o644); err != nil {
		t.Fatal(err)
	}
	return d
}

func bundledModel(t *testing.T) *model.Model {
	t.Helper()
	m, err := model.Parse(bundled.Model(), bundled.ModelName)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// runMode is one way runplan injects brown-outs.
type runMode struct {
	name string
	args []string
}

var runModes = []runMode{
	{"plain", nil},
	{"brownouts-at-tasks", []string{"--brownouts-at-tasks"}},
	{"brownouts-in-tasks", []string{"--brownouts-in-tasks"}},
	{"random-brownouts", []string{"--random-brownouts", "200", "--seed", "1"}},
}

// checkParity runs the deployment in every mode: the output must equal the
// reference executor's, byte for byte, and the whole final NVM (every
// activation area and partial-sum slot, as last written) the simulated
// board's.
func checkParity(t *testing.T, runplan string, d deployment) {
	t.Helper()
	nvmOut := filepath.Join(filepath.Dir(d.image), "nvm.bin")
	for _, mode := range runModes {
		r := run(t, runplan, append([]string{d.image, d.input, "--nvm-out", nvmOut}, mode.args...)...)
		if r.code != 0 {
			t.Fatalf("%s: exit status %d\n%s", mode.name, r.code, r.stderr)
		}
		st := parseStats(t, r.stderr)
		if got := strings.TrimSpace(r.stdout); got != d.want {
			t.Errorf("%s: output differs from the reference executor\n got %s\nwant %s\n%s", mode.name, got, d.want, r.stderr)
		}
		nvm, err := os.ReadFile(nvmOut)
		if err != nil {
			t.Fatal(err)
		}
		if diff := nvmDiff(d.plan, nvm, d.simNVM); diff != "" {
			t.Errorf("%s: final NVM differs from the simulated board's: %s", mode.name, diff)
		}
		if st.tasks != len(d.plan.Tasks) {
			t.Errorf("%s: the runtime counts %d tasks, the plan has %d", mode.name, st.tasks, len(d.plan.Tasks))
		}
		switch mode.name {
		case "plain":
			if st.runs != st.tasks || st.brownouts != 0 || st.commits != d.plan.Commits() {
				t.Errorf("%s: %+v, want every task once and %d commits", mode.name, st, d.plan.Commits())
			}
		case "brownouts-at-tasks":
			if st.brownouts != st.tasks {
				t.Errorf("%s: %d brown-outs for %d tasks", mode.name, st.brownouts, st.tasks)
			}
		case "brownouts-in-tasks":
			if st.inTask != st.tasks || st.brownouts != st.tasks {
				t.Errorf("%s: %d brown-outs (%d inside tasks) for %d tasks", mode.name, st.brownouts, st.inTask, st.tasks)
			}
		case "random-brownouts":
			if st.random != 200 || st.brownouts != 200 {
				t.Errorf("%s: %d brown-outs fired (%d random), want 200", mode.name, st.brownouts, st.random)
			}
		}
		t.Logf("%s: %s", mode.name, strings.TrimSpace(r.stderr))
	}
}

// TestPlanParity runs the bundled model's plan image of every scheduler on
// the C runtime, plain and with brown-outs, against the reference executor:
// on the MSP430FR5994 profile (16-bit progress word), and on the STM32F405
// (32-bit progress word, larger tiles).
func TestPlanParity(t *testing.T) {
	runplan := bin(t, "runplan")
	m := bundledModel(t)
	for _, profile := range []string{"msp430fr5994", "stm32f405"} {
		for _, name := range sched.Names() {
			t.Run(profile+"/"+name, func(t *testing.T) {
				t.Parallel()
				d := deployOn(t, m, bundled.Input(), profile, name)
				if want := map[string]int{"msp430fr5994": 2, "stm32f405": 4}[profile]; d.plan.WordBytes != want {
					t.Fatalf("word size %d, want %d", d.plan.WordBytes, want)
				}
				checkParity(t, runplan, d)
			})
		}
	}
}

// TestPlanParityKWS runs the shared KWS model, whose average pool splits its
// reduction into steps with partial sums in NVM: with the tile scheduler (as
// the brief asks), and with layer and inas, where steps run again after a
// brown-out and read the partial sums of slots written before it.
func TestPlanParityKWS(t *testing.T) {
	runplan := bin(t, "runplan")
	dir := needShared(t, "models")
	m, err := model.Load(filepath.Join(dir, "kws_dscnn_int8.tflite"))
	if err != nil {
		t.Fatal(err)
	}
	input, err := os.ReadFile(filepath.Join(sharedData, "inputs", "kws_ref_input0_int8.bin"))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"tile", "layer", "inas"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			d := deploy(t, m, input, name)
			split := 0
			for _, task := range d.plan.Tasks {
				if task.Part.Split() {
					split++
				}
			}
			if split == 0 {
				t.Fatalf("the KWS %s plan has no split reduction any more: this test no longer covers partial sums", name)
			}
			checkParity(t, runplan, d)
		})
	}
}

// TestSanitizedRuntime runs plans under AddressSanitizer and UBSan, with
// random brown-outs: no out-of-bounds access, no undefined behaviour.
func TestSanitizedRuntime(t *testing.T) {
	runplan := bin(t, "runplan-san")
	m := bundledModel(t)
	for _, name := range []string{"tile", "layer", "adaptive"} {
		d := deploy(t, m, bundled.Input(), name)
		r := run(t, runplan, d.image, d.input, "--random-brownouts", "100", "--seed", "7")
		if r.code != 0 || strings.TrimSpace(r.stdout) != d.want {
			t.Errorf("%s: exit %d, output %q, want %q\n%s", name, r.code, strings.TrimSpace(r.stdout), d.want, r.stderr)
		}
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
		d := deploy(t, m, input, "tile")
		r := run(t, runplan, d.image, d.input, "--random-brownouts", "100", "--seed", "3")
		if r.code != 0 || strings.TrimSpace(r.stdout) != d.want {
			t.Errorf("kws tile: exit %d, output %q, want %q\n%s", r.code, strings.TrimSpace(r.stdout), d.want, r.stderr)
		}
	}
}

// TestBrokenCommitIsCaught builds the runtime with the progress word written
// before a task's outputs: without brown-outs it still computes the right
// output, with brown-outs inside tasks it does not. This proves that the
// injection reaches the commit protocol.
func TestBrokenCommitIsCaught(t *testing.T) {
	broken := bin(t, "runplan-broken")
	d := deploy(t, bundledModel(t), bundled.Input(), "tile")
	r := run(t, broken, d.image, d.input)
	if r.code != 0 || strings.TrimSpace(r.stdout) != d.want {
		t.Fatalf("broken build without brown-outs: exit %d, output %q, want %q\n%s", r.code, strings.TrimSpace(r.stdout), d.want, r.stderr)
	}
	r = run(t, broken, d.image, d.input, "--random-brownouts", "200", "--seed", "1")
	if r.code != 0 {
		t.Fatalf("exit %d\n%s", r.code, r.stderr)
	}
	if strings.TrimSpace(r.stdout) == d.want {
		t.Fatalf("committing before writing gave the reference output despite 200 brown-outs inside tasks: the injection does not reach the protocol\n%s", r.stderr)
	}
}

// TestRuntimeRule runs the adaptive plan, whose image sets the run-time
// voltage rule, with the supply reading at the brown-out threshold before
// every third task: the runtime commits early and sleeps, and the output
// stays exact, with and without brown-outs.
func TestRuntimeRule(t *testing.T) {
	runplan := bin(t, "runplan")
	d := deploy(t, bundledModel(t), bundled.Input(), "adaptive")
	if !d.plan.RuntimeRule {
		t.Skip("the adaptive scheduler no longer sets the run-time rule")
	}
	nvmOut := filepath.Join(t.TempDir(), "nvm.bin")
	for _, extra := range [][]string{nil, {"--random-brownouts", "50", "--seed", "5"}, {"--brownouts-at-tasks"}, {"--brownouts-in-tasks"}} {
		args := append([]string{d.image, d.input, "--droop", "3", "--nvm-out", nvmOut}, extra...)
		r := run(t, runplan, args...)
		if r.code != 0 || strings.TrimSpace(r.stdout) != d.want {
			t.Fatalf("%v: exit %d, output %q, want %q\n%s", extra, r.code, strings.TrimSpace(r.stdout), d.want, r.stderr)
		}
		nvm, err := os.ReadFile(nvmOut)
		if err != nil {
			t.Fatal(err)
		}
		if diff := nvmDiff(d.plan, nvm, d.simNVM); diff != "" {
			t.Errorf("%v: final NVM differs from the simulated board's: %s", extra, diff)
		}
		st := parseStats(t, r.stderr)
		if st.early == 0 || st.sleeps == 0 {
			t.Errorf("%v: %d early commits and %d sleeps: the rule never acted", extra, st.early, st.sleeps)
		}
		t.Logf("%v: %s", extra, strings.TrimSpace(r.stderr))
	}
	// A plan without the flag ignores the supply.
	d = deploy(t, bundledModel(t), bundled.Input(), "tile")
	r := run(t, runplan, d.image, d.input, "--droop", "3")
	if st := parseStats(t, r.stderr); r.code != 0 || st.early != 0 || st.sleeps != 0 {
		t.Errorf("tile plan with a drooping supply: exit %d, %+v", r.code, st)
	}
}
