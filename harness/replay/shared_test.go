package replay

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/batteryless/harness/harness/testenv"

	"github.com/batteryless/harness/boards/profiles"
	"github.com/batteryless/harness/harness/model"
	"github.com/batteryless/harness/harness/refexec"
	"github.com/batteryless/harness/harness/sched"
	"github.com/batteryless/harness/traces"
)

const sharedData = "../../../shared/data"

// TestSharedTracesAndModels replays every shared trace with every shared
// model on the MSP430 profile with the tile scheduler: a model that cannot be
// deployed is refused with its numbers; every other replay has power cycles,
// and every inference it completes is bit-exact.
func TestSharedTracesAndModels(t *testing.T) {
	if _, err := os.Stat(sharedData); err != nil {
		testenv.SharedData(t, sharedData)
	}
	if testing.Short() {
		t.Skip("-short: the full trace x model matrix takes a while")
	}
	tracePaths, err := traces.Glob(filepath.Join(sharedData, "traces"))
	if err != nil || len(tracePaths) != 8 {
		t.Fatalf("traces: %v %d", err, len(tracePaths))
	}
	modelPaths, _ := filepath.Glob(filepath.Join(sharedData, "models", "*.tflite"))
	prof, err := profiles.Load("msp430fr5994")
	if err != nil {
		t.Fatal(err)
	}
	s, _ := sched.Get("tile")
	for _, mp := range modelPaths {
		m, err := model.Load(mp)
		if err != nil {
			t.Fatal(err)
		}
		p, err := s.Schedule(m, prof, sched.Options{})
		if err != nil {
			// Refused: the message must carry the numbers.
			if !strings.Contains(err.Error(), " J") && !strings.Contains(err.Error(), "bytes") {
				t.Errorf("%s refused without numbers: %v", filepath.Base(mp), err)
			}
			t.Logf("%s: refused: %v", filepath.Base(mp), err)
			continue
		}
		input := make([]byte, m.InputTensor().Bytes())
		ref, err := refexec.New(m).Run(input)
		if err != nil {
			t.Fatal(err)
		}
		for _, tp := range tracePaths {
			tp := tp
			cfg := Config{Model: m, Plan: p, Profile: prof, Power: powerOf(prof), Input: input, Reference: ref,
				OpenTrace: func() (traces.Reader, error) { return traces.Open(tp, traces.Options{}) }}
			res, err := Run(context.Background(), cfg)
			var ll *LivelockError
			if errors.As(err, &ll) {
				t.Logf("%s on %s: %v", filepath.Base(mp), filepath.Base(tp), err)
				continue
			}
			if err != nil {
				t.Fatalf("%s on %s: %v", filepath.Base(mp), filepath.Base(tp), err)
			}
			if res.PowerCycles == 0 || res.Mismatches != 0 {
				t.Errorf("%s on %s: %d power cycles, %d mismatches", filepath.Base(mp), filepath.Base(tp), res.PowerCycles, res.Mismatches)
			}
			t.Logf("%s on %s: %d inferences verified, %d power cycles, latency mean %.2f s, wall %.3f s (reference %.3f s)",
				filepath.Base(mp), filepath.Base(tp), res.Verified, res.PowerCycles, res.Latency.Mean, res.WallS, res.ReferenceWallS)
		}
	}
}
