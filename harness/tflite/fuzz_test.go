package tflite

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzDecode feeds arbitrary bytes to decode, the function behind Decode
// without its recover safety net, so any panic fails the fuzz run. Every
// error must be one line starting with "tflite: ", and every model that
// decodes must re-encode, decode to the same value, and re-encode to the
// same bytes.
//
// The seeds are our own encoder's output and a few hostile files; when
// ../shared/data/models exists its .tflite files of up to maxRealSeed bytes
// are added as seeds at run time (they are never written into testdata).
// Larger files are left out: mutations of them mostly land in constant data,
// and minimizing a large interesting input stalls the fuzzer for up to
// -fuzzminimizetime (60 s by default).
func FuzzDecode(f *testing.F) {
	const maxRealSeed = 4 << 10
	f.Add(mustEncode(f, tinyModel()))
	f.Add(mustEncode(f, sampleModel()))
	f.Add(aliasModel(8, 8, 2))
	f.Add([]byte("\x08\x00\x00\x00TFL3\x00\x00\x00\x00"))
	if files, _ := filepath.Glob(filepath.Join(realModelsDir, "*.tflite")); len(files) > 0 {
		for _, path := range files {
			if fi, err := os.Stat(path); err != nil || fi.Size() > maxRealSeed {
				continue
			}
			if data, err := os.ReadFile(path); err == nil {
				f.Add(data)
			}
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := decode(data)
		if err != nil {
			msg := err.Error()
			if !strings.HasPrefix(msg, "tflite: ") || strings.ContainsAny(msg, "\n\r") {
				t.Fatalf("error is not one line starting with \"tflite: \": %q", msg)
			}
			return
		}
		checkReencode(t, m)
	})
}
