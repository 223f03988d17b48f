package deadman

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/batteryless/harness/boards/supply"
	_ "github.com/batteryless/harness/boards/supply/dialect"
	"github.com/batteryless/harness/boards/supply/emulator"
)

func TestMain(m *testing.M) {
	Main()
	os.Exit(m.Run())
}

// onInstrument serves an emulated supply, switches its output on over a
// connection that is closed when the function returns, and returns the
// instrument and its URL.
func onInstrument(t *testing.T) (*emulator.Instrument, string) {
	t.Helper()
	in, err := emulator.New(emulator.Config{Dialect: "keysight-e36"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close() })
	addr, err := in.ServeTCP(context.Background(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "tcp://" + addr.String()
	ctx := context.Background()
	ch, err := supply.Open(ctx, url, supply.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	if err := ch.SetVoltage(ctx, supply.FromVolts(3)); err != nil {
		t.Fatal(err)
	}
	if err := ch.SetOutput(ctx, true); err != nil {
		t.Fatal(err)
	}
	if _, err := ch.Measure(ctx); err != nil {
		t.Fatal(err)
	}
	return in, url
}

// TestRunDies: the pipe closes without a disarm (the run died): the
// output goes off within a second.
func TestRunDies(t *testing.T) {
	in, url := onInstrument(t)
	d, err := Start(url)
	if err != nil {
		t.Fatal(err)
	}
	if !in.State(1).On {
		t.Fatal("the output is off before the run died")
	}
	died := time.Now()
	d.w.Close() // what the kernel does when the run dies
	for in.State(1).On {
		if time.Since(died) > time.Second {
			t.Fatal("the output is still on a second after the run died")
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Logf("output off %v after the pipe closed", time.Since(died).Round(time.Millisecond))
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestDisarmed: a disarmed deadman leaves the supply alone.
func TestDisarmed(t *testing.T) {
	in, url := onInstrument(t)
	d, err := Start(url)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Disarm(); err != nil {
		t.Fatal(err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	if !in.State(1).On {
		t.Fatal("a disarmed deadman switched the output off")
	}
}

// TestStartRefusesBadURL: a URL that cannot name a supply is refused
// before a process is started.
func TestStartRefusesBadURL(t *testing.T) {
	if _, err := Start("no scheme"); err == nil || !strings.Contains(err.Error(), "scheme") {
		t.Fatalf("Start(no scheme) = %v, want the URL's error", err)
	}
}
