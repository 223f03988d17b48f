package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// FuzzCheckConfig: any --config file, a bench file's nested sections
// included, is accepted or refused with the file's name, never a panic.
func FuzzCheckConfig(f *testing.F) {
	f.Add("resources:\n  port: /dev/ttyUSB0\n  supply: tcp://10.0.0.5\ndrivers:\n  supply: {timeout: 2s}\nstrategy: {power: gate}\n")
	f.Add("drivers:\n  serial:\n    baud: [1, 2]\n")
	f.Add("strategy: gate\n")
	f.Add("supply: tcp://x\nscheduler: tile\n")
	f.Add("resources: {suply: x}\n")
	f.Add("- a\n- b\n")
	dir := f.TempDir()
	fs := pflag.NewFlagSet("replay", pflag.ContinueOnError)
	fs.String("supply", "", "")
	fs.String("scheduler", "", "")
	fs.Int("inferences", 0, "")
	flags := map[string]*pflag.Flag{}
	fs.VisitAll(func(fl *pflag.Flag) { flags[fl.Name] = fl })
	known := []string{"supply", "scheduler", "inferences", "port", "board"}
	f.Fuzz(func(t *testing.T, body string) {
		if len(body) > 1<<16 {
			return
		}
		path := filepath.Join(dir, "bench.yaml")
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := checkConfigFile(path, flags, known); err != nil && !strings.Contains(err.Error(), path) {
			t.Fatalf("error %q does not name the file", err)
		}
	})
}
