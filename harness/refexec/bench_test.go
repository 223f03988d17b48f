package refexec

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/batteryless/harness/harness/model"
)

// benchModel times whole inferences of a shared model on a shared input and
// reports MAC/s. Compare with scripts/armnn_bench.py on the same machine.
func benchModel(b *testing.B, modelFile, inputFile string) {
	dir := needShared(b)
	m, err := model.Load(filepath.Join(dir, "models", modelFile))
	if err != nil {
		b.Fatal(err)
	}
	input, err := os.ReadFile(filepath.Join(dir, "inputs", inputFile))
	if err != nil {
		b.Fatal(err)
	}
	e := New(m)
	if err := e.SetInput(input); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		e.Invoke()
	}
	b.ReportMetric(float64(m.MACs())*float64(b.N)/b.Elapsed().Seconds(), "MAC/s")
}

func BenchmarkInferKWS(b *testing.B) {
	benchModel(b, "kws_dscnn_int8.tflite", "kws_ref_input0_int8.bin")
}
func BenchmarkInferIC(b *testing.B) {
	benchModel(b, "ic_resnet8_int8.tflite", "rand_ic_32x32x3_int8.bin")
}
func BenchmarkInferAD(b *testing.B) {
	benchModel(b, "ad_fc_autoencoder_int8.tflite", "rand_ad_640_int8.bin")
}
func BenchmarkInferMicroSpeech(b *testing.B) {
	benchModel(b, "micro_speech_int8.tflite", "micro_speech_yes_features_int8.bin")
}
