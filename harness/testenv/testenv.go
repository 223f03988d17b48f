// Package testenv decides what a test does when a real part it needs is
// missing: a tool (qemu-system-arm, a cross compiler), pseudo-terminals, or
// the shared test data beside the clone.
//
// By default such a test skips, naming what is missing and how to install
// it, and appends one line to the file named by $HARNESS_SKIP_LOG (the test
// script prints them as a summary at the end, so that a run that passes
// without its real parts says so). With HARNESS_STRICT=1 (what CI sets) the
// same test fails instead: a CI machine is expected to have every part.
package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// StrictEnv is the environment variable that turns skips for missing parts
// into failures.
const StrictEnv = "HARNESS_STRICT"

// SkipLogEnv names the file to which every skip for a missing part is
// appended, one tab-separated line: test, what is missing, how to install it.
const SkipLogEnv = "HARNESS_SKIP_LOG"

// Strict reports whether a missing part fails the test (HARNESS_STRICT=1).
func Strict() bool {
	v := os.Getenv(StrictEnv)
	return v != "" && v != "0" && v != "false"
}

var logMu sync.Mutex

// Missing skips t (or fails it in strict mode) because what is missing;
// install says how to get it (a command, or "" when there is none).
func Missing(t testing.TB, what, install string) {
	t.Helper()
	msg := what
	if install != "" {
		msg += " (install: " + install + ")"
	}
	if Strict() {
		t.Fatalf("%s=1: %s", StrictEnv, msg)
	}
	if path := os.Getenv(SkipLogEnv); path != "" {
		logMu.Lock()
		if f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err == nil {
			fmt.Fprintf(f, "%s\t%s\t%s\n", t.Name(), oneLine(what), oneLine(install))
			f.Close()
		}
		logMu.Unlock()
	}
	t.Skip(msg)
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// NeedTool skips (or fails, in strict mode) unless the program tool is on
// PATH; debian names the Debian packages that provide it.
func NeedTool(t testing.TB, tool, debian string) {
	t.Helper()
	if _, err := exec.LookPath(tool); err != nil {
		Missing(t, tool+" is not installed", "apt-get install "+debian)
	}
}

// SharedData returns the shared test data folder rel (relative to the
// test's package folder, e.g. "../../../shared/data/models"), or skips (or
// fails, in strict mode) when it is absent: a fresh clone without
// ../shared beside it.
func SharedData(t testing.TB, rel string) string {
	t.Helper()
	if _, err := os.Stat(rel); err != nil {
		Missing(t, filepath.Clean(rel)+" absent: the shared test data is not beside this clone", "")
	}
	return rel
}

// RealTimeEnv is the environment variable that defers the real-time tests:
// with HARNESS_REALTIME=defer they skip, for the test script to run them
// afterwards on their own.
const RealTimeEnv = "HARNESS_REALTIME"

// RealTime marks a test whose assertions are wall-clock timings (a board
// on a bench in real time: edges within a millisecond of the model's
// instants). Such a test measures the machine as much as the code when
// other packages' tests load every core at once, as `go test ./...` does;
// scripts/test.sh therefore runs the suite with HARNESS_REALTIME=defer,
// where these skip (not a missing part: they run next), and then runs
// them alone, one package at a time.
func RealTime(t testing.TB) {
	t.Helper()
	if os.Getenv(RealTimeEnv) == "defer" {
		t.Skip("a real-time test: run alone after the rest (scripts/test.sh), not under the suite's load")
	}
}
