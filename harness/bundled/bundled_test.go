package bundled

import (
	"bytes"
	"flag"
	"os"
	"testing"

	"github.com/batteryless/harness/harness/model"
	"github.com/batteryless/harness/harness/modelgen"
	"github.com/batteryless/harness/harness/refexec"
)

var update = flag.Bool("update", false, "rewrite tinycnn.tflite and tinycnn_input.bin (go generate ./harness/bundled)")

// The embedded files are exactly what the generator makes with its default
// configuration.
func TestBundledIsReproducible(t *testing.T) {
	m, in, err := modelgen.Generate(modelgen.DefaultConfig())
	if err != nil {
		t.Fatal(err)
	}
	files := []struct {
		name           string
		embedded, made []byte
	}{
		{"tinycnn.tflite", Model(), m},
		{"tinycnn_input.bin", Input(), in},
	}
	for _, f := range files {
		if *update {
			if err := os.WriteFile(f.name, f.made, 0o644); err != nil {
				t.Fatal(err)
			}
			t.Logf("wrote %s (%d bytes)", f.name, len(f.made))
			continue
		}
		if !bytes.Equal(f.embedded, f.made) {
			t.Errorf("harness/bundled/%s (%d bytes) differs from what modelgen.Generate(modelgen.DefaultConfig()) makes (%d bytes): "+
				"if the generator changed on purpose, regenerate with: go generate ./harness/bundled", f.name, len(f.embedded), len(f.made))
		}
	}
}

// The bundled model imports and runs on the bundled input.
func TestBundledRuns(t *testing.T) {
	m, err := model.Parse(Model(), ModelName)
	if err != nil {
		t.Fatal(err)
	}
	out, err := refexec.New(m).Run(Input())
	if err != nil {
		t.Fatal(err)
	}
	sum := 0
	for _, b := range out {
		sum += int(int8(b)) + 128
	}
	if len(out) != 10 || sum < 240 || sum > 270 {
		t.Errorf("output %v: want 10 int8 probabilities summing to about 256/256", out)
	}
	t.Logf("%s: %d MACs, weights %d bytes, arena %d bytes; output %v", ModelName, m.MACs(), m.WeightBytes(), m.Plan.ArenaBytes, model.BytesAsInt8(out))
}
