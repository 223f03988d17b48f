package scpi_test

import (
	"context"
	"testing"

	"github.com/batteryless/harness/boards/supply/emulator"
	"github.com/batteryless/harness/boards/supply/scpi"
)

// BenchmarkQueryRoundTrip is one query and its answer over loopback TCP to
// the emulator: the client's own cost per call (a LAN instrument adds its
// 8 to 80 ms).
func BenchmarkQueryRoundTrip(b *testing.B) {
	in, err := emulator.New(emulator.Config{Dialect: "keysight-n67"})
	if err != nil {
		b.Fatal(err)
	}
	defer in.Close()
	ctx := context.Background()
	addr, err := in.ServeTCP(ctx, "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	c, err := scpi.Dial(ctx, scpi.TCP{Addr: addr.String()}, scpi.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	b.ResetTimer()
	for b.Loop() {
		if _, err := c.QueryFloat(ctx, "MEAS:VOLT? (@1)"); err != nil {
			b.Fatal(err)
		}
	}
}
