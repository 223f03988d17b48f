package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/batteryless/harness/boards/supply/emulator"
)

// emulatedSupply serves an emulated instrument in the test's process,
// writing its timeline to a file.
func emulatedSupply(t *testing.T, dialect string) (*emulator.Instrument, string, string) {
	t.Helper()
	tl := filepath.Join(t.TempDir(), "timeline.jsonl")
	f, err := os.Create(tl)
	if err != nil {
		t.Fatal(err)
	}
	in, err := emulator.New(emulator.Config{Dialect: dialect, Timeline: f})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	addr, err := in.ServeTCP(ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); in.Close(); f.Close() })
	return in, "tcp://" + addr.String(), tl
}

func TestSupplyIdentifySetMeasureOff(t *testing.T) {
	in, url, _ := emulatedSupply(t, "rigol-dp800")
	out, err := run(t, "supply", "identify", url, "--json")
	if err != nil {
		t.Fatal(err)
	}
	var id struct {
		Manufacturer, Model, Dialect string
		Capabilities                 struct {
			Channels int     `json:"channels"`
			OVP      bool    `json:"ovp"`
			MaxVolts float64 `json:"max_volts"`
			Notes    []string
		} `json:"capabilities"`
	}
	if err := json.Unmarshal([]byte(out), &id); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if id.Model != "DP832" || id.Dialect != "rigol-dp800" || id.Capabilities.Channels != 3 || !id.Capabilities.OVP ||
		!strings.Contains(strings.Join(id.Capabilities.Notes, " "), "1 s minimum") {
		t.Fatalf("identify: %+v", id)
	}
	if out, err = run(t, "supply", "set", url, "--channel", "2", "--volts", "3.0", "--amps", "0.01", "--on", "--json"); err != nil {
		t.Fatal(err)
	}
	st := in.State(2)
	if !st.On || st.Volts != 3 || st.Amps != 0.01 || !st.OVPOn || st.OVP != 3.1 {
		t.Fatalf("after set: %+v", st)
	}
	if out, err = run(t, "supply", "measure", url, "--channel", "2", "--json"); err != nil {
		t.Fatal(err)
	}
	var m struct {
		Volts, Amps float64
		Output      bool
	}
	if err := json.Unmarshal([]byte(out), &m); err != nil || m.Volts != 3 || !m.Output || m.Amps != 0.003 {
		t.Fatalf("measure: %s (%v)", out, err)
	}
	if _, err = run(t, "supply", "off", url, "--channel", "2"); err != nil {
		t.Fatal(err)
	}
	if in.State(2).On {
		t.Fatal("still on after off")
	}
}

// TestSupplySetAboveTheProfileRefused: 3.7 V for an MSP430FR5994 (3.6 V)
// never reaches the instrument; the command fails (exit 2).
func TestSupplySetAboveTheProfileRefused(t *testing.T) {
	in, url, _ := emulatedSupply(t, "keysight-e36")
	n0 := len(in.Events())
	for _, args := range [][]string{
		{"--volts", "3.7", "--on"},
		{"--volts", "3.0", "--amps", "0.5", "--on"},
		{"--volts", "3.3", "--on", "--profile", "stm32f405", "--amps", "0.2"},
	} {
		_, err := run(t, append([]string{"supply", "set", url}, args...)...)
		var ee *exitError
		if err == nil || errors.As(err, &ee) || !strings.Contains(err.Error(), "refused") {
			t.Fatalf("%v: err = %v, want a refusal (exit 2)", args, err)
		}
	}
	if ev := in.Events(); len(ev) != n0 {
		t.Fatalf("a refused setpoint reached the instrument: %+v", ev[n0:])
	}
}

// TestSupplyConfigSection reads the URL and channel from a "supply:"
// section of --config.
func TestSupplyConfigSection(t *testing.T) {
	in, url, _ := emulatedSupply(t, "keysight-n67")
	cfg := filepath.Join(t.TempDir(), "bench.yaml")
	log := filepath.Join(t.TempDir(), "supply.log")
	if err := os.WriteFile(cfg, []byte("supply:\n  url: "+url+"\n  channel: 3\n  log: "+log+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := run(t, "supply", "set", "--config", cfg, "--volts", "2.5", "--on"); err != nil {
		t.Fatal(err)
	}
	if st := in.State(3); !st.On || st.Volts != 2.5 {
		t.Fatalf("channel 3: %+v", st)
	}
	b, err := os.ReadFile(log)
	if err != nil || !strings.Contains(string(b), "> OUTP ON,(@3)") {
		t.Fatalf("transcript: %v\n%s", err, b)
	}
}

// TestSupplyServeAndFor runs "supply serve" and "supply set --for"
// in-process: the JSON line, then an output held on for 300 ms and
// switched off.
func TestSupplyServeAndFor(t *testing.T) {
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	ctx, cancel := context.WithCancel(context.Background())
	tl := filepath.Join(t.TempDir(), "tl.jsonl")
	done := make(chan error, 1)
	go func() {
		root := newRootCmd()
		root.SetOut(pw)
		root.SetArgs([]string{"supply", "serve", "--dialect", "siglent-spd3303x", "--timeline", tl})
		done <- root.ExecuteContext(ctx)
		pw.Close()
	}()
	line, err := bufio.NewReader(pr).ReadString('\n')
	if err != nil {
		t.Fatal(err)
	}
	var addr struct{ SCPI string }
	if err := json.Unmarshal([]byte(line), &addr); err != nil || addr.SCPI == "" {
		t.Fatalf("serve printed %q", line)
	}
	if _, err := run(t, "supply", "set", "tcp://"+addr.SCPI, "--volts", "3.0", "--on", "--for", "300ms"); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	ev, err := emulator.ReadTimelineFile(tl)
	if err != nil {
		t.Fatal(err)
	}
	on, off := outputEdges(ev, 1)
	if on.IsZero() || off.IsZero() || off.Sub(on) < 300*time.Millisecond || off.Sub(on) > 3*time.Second {
		t.Fatalf("on %v, off %v: want about 300 ms on", on, off)
	}
}

// outputEdges returns the first on and the first off after it.
func outputEdges(ev []emulator.Event, ch int) (on, off time.Time) {
	for _, e := range ev {
		if e.Kind != "output" || e.Channel != ch {
			continue
		}
		if e.On && on.IsZero() {
			on = e.Time
		}
		if !e.On && !on.IsZero() && off.IsZero() {
			off = e.Time
		}
	}
	return on, off
}

// TestSupplyOffOnSignalOfTheBuiltProgram builds the harness, holds an
// emulated output on with "supply set --on --for 30s", sends SIGTERM (and
// SIGINT) and reads the emulator's timeline: the output went off within a
// second of the signal, and the program exited with 130.
func TestSupplyOffOnSignalOfTheBuiltProgram(t *testing.T) {
	exe := filepath.Join(t.TempDir(), "harness")
	if out, err := exec.Command("go", "build", "-o", exe, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGINT} {
		t.Run(sig.String(), func(t *testing.T) {
			in, url, tl := emulatedSupply(t, "keysight-n67")
			cmd := exec.Command(exe, "supply", "set", url, "--volts", "3.3", "--on", "--for", "30s")
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(20 * time.Second)
			for !in.State(1).On && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
			if !in.State(1).On {
				cmd.Process.Kill()
				cmd.Wait()
				t.Fatalf("the output never went on: %s", out.String())
			}
			sent := time.Now()
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			errc := make(chan error, 1)
			go func() { errc <- cmd.Wait() }()
			var err error
			select {
			case err = <-errc:
			case <-time.After(10 * time.Second):
				cmd.Process.Kill()
				t.Fatalf("no exit within 10 s: %s", out.String())
			}
			var xe *exec.ExitError
			if !errors.As(err, &xe) || xe.ExitCode() != 130 {
				t.Fatalf("exit %v, want 130: %s", err, out.String())
			}
			ev, rerr := emulator.ReadTimelineFile(tl)
			if rerr != nil {
				t.Fatal(rerr)
			}
			on, off := outputEdges(ev, 1)
			if on.IsZero() || off.IsZero() || off.Before(sent) || off.Sub(sent) > time.Second {
				t.Fatalf("output on at %v, off at %v, signal at %v: %s", on, off, sent, out.String())
			}
			if in.State(1).On {
				t.Fatal("the output is on")
			}
			t.Logf("%v: output off %v after the signal; %s", sig, off.Sub(sent).Round(time.Millisecond), strings.TrimSpace(out.String()))
		})
	}
}
