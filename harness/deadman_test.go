package main

import (
	"os"
	"testing"

	"github.com/batteryless/harness/boards/supply/deadman"
)

// TestMain lets this test binary be a bench run's deadman, as the harness
// program is (boards/supply/deadman).
func TestMain(m *testing.M) {
	deadman.Main()
	os.Exit(m.Run())
}
