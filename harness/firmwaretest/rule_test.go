package firmwaretest

import (
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/batteryless/harness/boards/profiles"
	"github.com/batteryless/harness/boards/sim"
	"github.com/batteryless/harness/harness/bundled"
	"github.com/batteryless/harness/harness/model"
	"github.com/batteryless/harness/harness/plan"
	"github.com/batteryless/harness/harness/sched"
)

// ruleEnergyNJ is the energy above brown-out the firmware computes from a
// reading of mv millivolts with the image's rule section (runtime.c's
// energy_left): C * (V^2 - Voff^2) / 2 in nJ, rounded down.
func ruleEnergyNJ(r *plan.ImageRule, mv uint16) uint64 {
	if mv <= r.VoffMV {
		return 0
	}
	return uint64(r.CapacitanceNF) * (uint64(mv)*uint64(mv) - uint64(r.VoffMV)*uint64(r.VoffMV)) / 2000000
}

// ruleAvailableJ is what the simulated board is told for the same reading:
// the firmware's energy, in joules; a 0 mV reading (a port that cannot
// measure: the firmware never sleeps) is +Inf.
func ruleAvailableJ(r *plan.ImageRule, mv uint16) float64 {
	if mv == 0 {
		return math.Inf(1)
	}
	return float64(ruleEnergyNJ(r, mv)) * 1e-9
}

// enoughMV is the lowest reading whose energy covers need nJ (0 if none).
func enoughMV(r *plan.ImageRule, need uint32) uint16 {
	lo, hi := int(r.VoffMV)+1, math.MaxUint16
	if ruleEnergyNJ(r, uint16(hi)) < uint64(need) {
		return 0
	}
	for lo < hi {
		mid := (lo + hi) / 2
		if ruleEnergyNJ(r, uint16(mid)) >= uint64(need) {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return uint16(lo)
}

// pinNeeds moves the energy of every sixth task (0, 6, ...) so that its
// need is, as near as floats get, exactly the energy of a reading: the rule
// then compares equal numbers, which only the same comparison on both sides
// decides alike. It returns the readings of those tasks.
func pinNeeds(p *plan.Plan, r *plan.ImageRule) map[int]uint16 {
	pinned := map[int]uint16{}
	for i := 0; i < len(p.Tasks); i += 6 {
		need, _ := math.Modf(p.RuleNeed(i) * 1e9)
		mv := enoughMV(r, uint32(need))
		if mv == 0 {
			continue
		}
		p.Tasks[i].Energy += float64(ruleEnergyNJ(r, mv))*1e-9 - p.RuleNeed(i)
		pinned[i] = mv
	}
	return pinned
}

// ruleReadings picks, per task, the readings its rule gets, by task index:
// a pinned task's reading (see pinNeeds); one just short of the need then one just enough; just enough;
// 0 mV (cannot measure); brown-out level twice (an early commit, if the
// work is uncommitted, then a sleep); just short twice.
func ruleReadings(r *plan.ImageRule, tasks int, pinned map[int]uint16) map[int][]uint16 {
	out := map[int][]uint16{}
	for i, mv := range pinned {
		out[i] = []uint16{mv, mv}
	}
	for i := 0; i < tasks; i++ {
		ok := enoughMV(r, r.NeedNJ[i])
		if ok <= r.VoffMV+1 {
			continue
		}
		switch i % 6 {
		case 1:
			out[i] = []uint16{ok - 1, ok}
		case 2:
			out[i] = []uint16{ok}
		case 3:
			out[i] = []uint16{0}
		case 4:
			out[i] = []uint16{r.VoffMV, r.VoffMV}
		case 5:
			out[i] = []uint16{ok - 1, ok - 1}
		}
	}
	return out
}

// simRuleEvents runs one inference on the simulated board, telling its rule
// the energies of the readings (per task, in order; 3600 mV beyond them),
// and lists what the rule did: "rule T early-commit" and "rule T sleep".
func simRuleEvents(t *testing.T, d deployment, prof *profiles.Profile, r *plan.ImageRule, readings map[int][]uint16, input []byte) ([]string, []byte) {
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
	var events []string
	taken := make([]int, len(p.Tasks))
	cur, woke, done := 0, false, false
	for i := 0; !done; i++ {
		if i > 100*len(p.Tasks)+100 {
			t.Fatal("the simulated board does not finish")
		}
		mv := uint16(3600)
		if cur < len(p.Tasks) && taken[cur] < len(readings[cur]) {
			mv = readings[cur][taken[cur]]
		}
		seg, ok := b.Next(ruleAvailableJ(r, mv))
		if !ok {
			t.Fatal("the simulated board went idle without finishing the inference")
		}
		// The rule reads before every Read of a task, except right after
		// its sleep, and again after an early commit.
		switch {
		case seg.Kind == sim.EarlyCommit:
			events = append(events, fmt.Sprintf("rule %d early-commit", cur))
			taken[cur]++
		case seg.Kind == sim.Sleep:
			events = append(events, fmt.Sprintf("rule %d sleep", cur))
			taken[cur]++
		case seg.Kind == sim.Read && !woke:
			taken[cur]++
		}
		woke = seg.Kind == sim.Sleep
		ev := b.Complete()
		done = ev.InferenceDone
		if seg.Task >= 0 && (seg.Kind == sim.Commit || seg.Kind == sim.Write && !p.Tasks[seg.Task].Commit) {
			cur = seg.Task + 1
		}
	}
	return events, append([]byte(nil), b.NVM()...)
}

var ruleEventRE = regexp.MustCompile(`(?m)^rule \d+ (early-commit|sleep)$`)

// writeReadings writes runplan's --supply file.
func writeReadings(t *testing.T, path string, readings map[int][]uint16) {
	t.Helper()
	var sb strings.Builder
	sb.WriteString("# task: readings in mV, in order\n* 3600\n")
	tasks := make([]int, 0, len(readings))
	for k := range readings {
		tasks = append(tasks, k)
	}
	slices.Sort(tasks)
	for _, k := range tasks {
		sb.WriteString(strconv.Itoa(k))
		for _, mv := range readings[k] {
			sb.WriteString(" " + strconv.Itoa(int(mv)))
		}
		sb.WriteString("\n")
	}
	if err := os.WriteFile(path, []byte(sb.String()), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestRuleParity gives the same supply readings to the C runtime's rule
// (runplan --supply) and, as the energies the firmware computes from them,
// to the simulated board's (sim.Board.Next): the early commits and sleeps
// must come before the same tasks, in the same order, and the output and
// the final NVM must be the same. The readings include ones 1 mV short of a
// task's need and 1 mV above it, so a rounding that differs shows; plans
// whose tasks exceed the "runs anyway" limit cover that branch.
func TestRuleParity(t *testing.T) {
	runplan := bin(t, "runplan")
	type deployCase struct {
		name    string
		m       *model.Model
		input   []byte
		profile string
		halve   bool // the budget set so that half of the tasks run anyway
	}
	cases := []deployCase{
		{"bundled/msp430fr5994", bundledModel(t), bundled.Input(), "msp430fr5994", false},
		{"bundled/qemu-stm32", bundledModel(t), bundled.Input(), "qemu-stm32", false},
		{"bundled/msp430fr5994/runs-anyway", bundledModel(t), bundled.Input(), "msp430fr5994", true},
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
		cases = append(cases, deployCase{"kws/msp430fr5994", m, input, "msp430fr5994", false}, deployCase{"kws/qemu-stm32", m, input, "qemu-stm32", false})
	} else {
		t.Logf("KWS left out: %v", err)
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			prof, err := profiles.Load(c.profile)
			if err != nil {
				t.Fatal(err)
			}
			s, _ := sched.Get("adaptive")
			p, err := s.Schedule(c.m, prof, sched.Options{})
			if err != nil {
				t.Fatal(err)
			}
			if c.halve {
				needs := make([]float64, len(p.Tasks))
				for i := range needs {
					needs[i] = p.RuleNeed(i)
				}
				slices.Sort(needs)
				p.Budget = needs[len(needs)/2] / plan.RuleRunAnyway
			}
			img0, err := plan.EncodeImage(c.m, p)
			if err != nil {
				t.Fatal(err)
			}
			first, err := plan.DecodeImage(img0)
			if err != nil {
				t.Fatal(err)
			}
			if first.Rule == nil {
				t.Fatal("the adaptive plan's image has no rule section")
			}
			pinned := pinNeeds(p, first.Rule)
			d := deployPlan(t, c.m, c.input, prof, p)
			img, err := plan.DecodeImage(d.imageBytes)
			if err != nil {
				t.Fatal(err)
			}
			equal := 0
			for i, mv := range pinned {
				if uint64(img.Rule.NeedNJ[i]) == ruleEnergyNJ(img.Rule, mv) {
					equal++
				}
			}
			if equal == 0 {
				t.Fatalf("none of the %d pinned tasks needs exactly a reading's energy: the case covers no tie", len(pinned))
			}
			anyway := 0
			for i := range p.Tasks {
				if p.RuleNeed(i) > p.RuleLimit() {
					anyway++
				}
			}
			if c.halve && anyway == 0 {
				t.Fatal("no task above the limit of the lowered budget: the case covers nothing")
			}
			readings := ruleReadings(img.Rule, len(p.Tasks), pinned)
			supply := filepath.Join(t.TempDir(), "supply.txt")
			writeReadings(t, supply, readings)
			simEvents, simNVM := simRuleEvents(t, d, prof, img.Rule, readings, c.input)
			withVerifiedCRC(simNVM, d.imageBytes)

			nvmOut := filepath.Join(t.TempDir(), "nvm.bin")
			r := run(t, runplan, d.image, d.input, "--supply", supply, "--nvm-out", nvmOut)
			if r.code != 0 || strings.TrimSpace(r.stdout) != d.want {
				t.Fatalf("exit %d, output %q, want %q\n%s", r.code, strings.TrimSpace(r.stdout), d.want, r.stderr)
			}
			var cEvents []string
			for _, m := range ruleEventRE.FindAllString(r.stderr, -1) {
				cEvents = append(cEvents, m)
			}
			if !slices.Equal(cEvents, simEvents) {
				t.Errorf("the C rule and the simulated board's differ:\n C   %v\n sim %v", cEvents, simEvents)
			}
			sleeps, early := 0, 0
			for _, e := range simEvents {
				if strings.HasSuffix(e, "sleep") {
					sleeps++
				} else {
					early++
				}
			}
			if sleeps == 0 || early == 0 {
				t.Errorf("%d early commits and %d sleeps: the readings do not exercise the rule", early, sleeps)
			}
			nvm, err := os.ReadFile(nvmOut)
			if err != nil {
				t.Fatal(err)
			}
			if diff := nvmDiff(p, nvm, simNVM); diff != "" {
				t.Errorf("final NVM differs from the simulated board's: %s", diff)
			}
			t.Logf("%d tasks (%d run anyway, %d with a need equal to a reading's energy), %d early commits and %d sleeps, the same in C and on the simulated board", len(p.Tasks), anyway, equal, early, sleeps)
		})
	}
}

// TestSupplyFileRefused gives runplan --supply files it must refuse: exit 1
// with the file and line named, never a run on a half-read supply.
func TestSupplyFileRefused(t *testing.T) {
	runplan := bin(t, "runplan")
	d := deploy(t, bundledModel(t), bundled.Input(), "adaptive")
	dir := t.TempDir()
	cases := map[string]string{
		"no reading":    "# readings\n3\n",
		"negative":      "1 -5\n",
		"too high":      "2 70000\n",
		"not a number":  "1 2800\nx 2800\n",
		"bad reading":   "1 28o0\n",
		"huge task":     "99999999999999999999 2800\n",
		"star no value": "* \n",
	}
	for name, text := range cases {
		p := filepath.Join(dir, strings.ReplaceAll(name, " ", "_")+".txt")
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		r := run(t, runplan, d.image, d.input, "--supply", p)
		if r.code != 1 || !strings.Contains(r.stderr, p+":") || strings.Count(strings.TrimSpace(r.stderr), "\n") != 0 {
			t.Errorf("%s: exit %d, stderr %q: want 1 and one line naming %s:LINE", name, r.code, r.stderr, p)
		}
	}
	long := filepath.Join(dir, "long.txt")
	if err := os.WriteFile(long, []byte("1"+strings.Repeat(" 2800", 2000)+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if r := run(t, runplan, d.image, d.input, "--supply", long); r.code != 1 || !strings.Contains(r.stderr, "longer than") {
		t.Errorf("a line too long: exit %d, %q", r.code, r.stderr)
	}
}
