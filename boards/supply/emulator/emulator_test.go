package emulator

import (
	"bufio"
	"bytes"
	"context"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func mustNew(t *testing.T, cfg Config) *Instrument {
	t.Helper()
	in, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { in.Close() })
	return in
}

func popAll(in *Instrument) []string {
	var out []string
	for {
		a := in.Execute("SYST:ERR?")
		if len(a) != 1 || strings.HasPrefix(a[0], "0,") || strings.HasPrefix(a[0], "0 ") {
			return out
		}
		out = append(out, a[0])
	}
}

// TestMnemonicsAndPaths: long and short forms in any case, optional nodes,
// ';' units with the compound header path, ':' back to the root.
func TestMnemonicsAndPaths(t *testing.T) {
	in := mustNew(t, Config{Dialect: "keysight-e36"})
	for _, cmd := range []string{"VOLT 1", "volt 1.5", "SOURce:VOLTage:LEVel:IMMediate:AMPLitude 2", "sour:volt:lev 2.5", "VOLTAGE 3"} {
		in.Execute(cmd)
		if errs := popAll(in); len(errs) > 0 {
			t.Fatalf("%q: %v", cmd, errs)
		}
	}
	if a := in.Execute("VOLT?;CURR?"); len(a) != 2 || a[0] != "3.00000E+00" {
		t.Fatalf("VOLT?;CURR? = %q", a)
	}
	// VOLT:PROT 3.5, then PROT:STAT OFF on the VOLT: path, then back to the root.
	in.Execute("VOLT:PROT 3.5;PROT:STAT OFF;:OUTP ON")
	st := in.State(1)
	if st.OVP != 3.5 || st.OVPOn || !st.On {
		t.Fatalf("compound message: %+v (errors %v)", st, popAll(in))
	}
	// A relative header that does not exist on the path is an error.
	in.Execute("VOLT:PROT 3.5;OUTP OFF")
	if errs := popAll(in); len(errs) != 1 || !strings.HasPrefix(errs[0], "-113") {
		t.Fatalf("OUTP on the VOLT:PROT path: %v", errs)
	}
	// Neither VOL nor VOLTAG are mnemonics.
	in.Execute("VOL 1;:VOLTAG 1")
	if errs := popAll(in); len(errs) != 2 {
		t.Fatalf("bad mnemonics: %v", errs)
	}
}

// TestErrorQueue: the standard codes, an unknown query left unanswered,
// the queue's overflow.
func TestErrorQueue(t *testing.T) {
	in := mustNew(t, Config{Dialect: "keysight-n67"})
	cases := map[string]string{
		"VOLT 99,(@1)":   "-222",
		"VOLT":           "-109",
		"VOLT 1,2,(@1)":  "-108",
		"VOLT abc,(@1)":  "-104",
		"OUTP MAYBE":     "-224",
		"FROB 1":         "-113",
		"VOLT 1,(@9)":    "-222",
		"INIT:TRAN (@1)": "",
	}
	for cmd, code := range cases {
		if a := in.Execute(cmd); len(a) != 0 {
			t.Fatalf("%q answered %q", cmd, a)
		}
		errs := popAll(in)
		if code == "" && len(errs) == 0 {
			continue
		}
		if len(errs) != 1 || !strings.HasPrefix(errs[0], code+",") {
			t.Errorf("%q: queue %v, want %s", cmd, errs, code)
		}
	}
	if a := in.Execute("MEAS:FROB? (@1)"); len(a) != 0 {
		t.Fatalf("an unknown query was answered: %q", a)
	}
	if errs := popAll(in); len(errs) != 1 || !strings.Contains(errs[0], "MEAS:FROB?") {
		t.Fatalf("unknown query: %v", errs)
	}
	for range 30 {
		in.Execute("FROB")
	}
	errs := popAll(in)
	if len(errs) != queueSize || !strings.HasPrefix(errs[len(errs)-1], "-350") {
		t.Fatalf("%d entries, last %q; want %d ending in -350", len(errs), errs[len(errs)-1], queueSize)
	}
}

// TestOneClientAtATime: a second connection is closed at once while the
// first is served.
func TestOneClientAtATime(t *testing.T) {
	in := mustNew(t, Config{Dialect: "rigol-dp800"})
	addr, err := in.ServeTCP(context.Background(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	a, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ra := bufio.NewReader(a)
	io.WriteString(a, "*IDN?\n")
	if l, err := ra.ReadString('\n'); err != nil || !strings.Contains(l, "DP832") {
		t.Fatalf("first client: %q, %v", l, err)
	}
	b, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	io.WriteString(b, "*IDN?\n")
	b.SetReadDeadline(time.Now().Add(2 * time.Second))
	if n, err := b.Read(make([]byte, 10)); err == nil || n > 0 {
		t.Fatalf("second client got %d bytes, %v", n, err)
	}
	a.Close()
	time.Sleep(50 * time.Millisecond)
	c, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "*IDN?\n")
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if l, err := bufio.NewReader(c).ReadString('\n'); err != nil || !strings.Contains(l, "DP832") {
		t.Fatalf("next client: %q, %v", l, err)
	}
}

// TestLatencyAndSiglentPace: injected latency delays answers; an SPD3303X
// drops a query sent within 10 ms of its last answer.
func TestLatencyAndSiglentPace(t *testing.T) {
	in := mustNew(t, Config{Dialect: "siglent-spd3303x", Latency: 30 * time.Millisecond})
	addr, err := in.ServeTCP(context.Background(), "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	c, err := net.Dial("tcp", addr.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	r := bufio.NewReader(c)
	t0 := time.Now()
	io.WriteString(c, "*IDN?\n")
	if _, err := r.ReadString('\n'); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(t0); d < 30*time.Millisecond {
		t.Fatalf("answer after %v, latency 30 ms", d)
	}
	in.cfg.Latency = 0
	io.WriteString(c, "*IDN?\n") // at once: lost
	time.Sleep(20 * time.Millisecond)
	io.WriteString(c, "INST?\n")
	c.SetReadDeadline(time.Now().Add(2 * time.Second))
	if l, err := r.ReadString('\n'); err != nil || strings.TrimSpace(l) != "CH1" {
		t.Fatalf("got %q, %v; want only the paced query's answer", l, err)
	}
	// No *OPC? on the SPD3303X.
	if a := in.Execute("*OPC?"); len(a) != 0 {
		t.Fatalf("*OPC? answered %q", a)
	}
}

// TestTimelineFile: every output change is a JSON line with its instant;
// OnChange sees the same events and may call back into the instrument.
func TestTimelineFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "timeline.jsonl")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var seen []Event
	var in *Instrument
	in = mustNew(t, Config{Dialect: "keysight-n67", Timeline: f, OnChange: func(e Event) {
		mu.Lock()
		seen = append(seen, e)
		mu.Unlock()
		if e.Kind == "output" && e.On {
			in.SetDraw(e.Channel, 0.001) // a load answers the output going on
		}
	}})
	in.Execute("VOLT 3.3,(@2);CURR 0.02,(@2);OUTP ON,(@2)")
	in.Execute("OUTP OFF,(@2)")
	f.Close()
	ev, err := ReadTimelineFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	for _, e := range ev {
		kinds = append(kinds, e.Kind)
		if e.Channel != 2 || e.Time.IsZero() {
			t.Fatalf("event %+v", e)
		}
	}
	if strings.Join(kinds, ",") != "voltage,current,output,output" || !ev[2].On || ev[3].On || ev[2].Volts != 3.3 {
		t.Fatalf("timeline %+v", ev)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) != len(ev) {
		t.Fatalf("OnChange saw %d events, the file has %d", len(seen), len(ev))
	}
	if _, err := ReadTimeline(strings.NewReader("{bad\n"), 10); err == nil || !strings.Contains(err.Error(), "line 1") {
		t.Fatalf("bad timeline: %v", err)
	}
}

// TestEveryModelAnswersIDN: every model of every dialect starts, answers
// *IDN? and resets.
func TestEveryModelAnswersIDN(t *testing.T) {
	for _, name := range Dialects() {
		for _, m := range dialectByName(name).models {
			in := mustNew(t, Config{Dialect: name, Model: m.name})
			if a := in.Execute("*IDN?"); len(a) != 1 || !strings.Contains(a[0], m.name) {
				t.Errorf("%s %s: *IDN? = %q", name, m.name, a)
			}
			in.Execute("*RST;*CLS")
			if errs := popAll(in); len(errs) > 0 {
				t.Errorf("%s: %v", name, errs)
			}
		}
	}
	if _, err := New(Config{Dialect: "nope"}); err == nil {
		t.Fatal("unknown dialect accepted")
	}
	if _, err := New(Config{Dialect: "rigol-dp800", Model: "DP999"}); err == nil {
		t.Fatal("unknown model accepted")
	}
}

// FuzzExecute sends any program message to every dialect: no panic, no
// hang, and nothing but bounded answers.
func FuzzExecute(f *testing.F) {
	for _, s := range []string{"VOLT 3.3,(@1)", "*IDN?;*OPC?", ":OUTP CH1,ON", "ARB:DATA 1,0.1,0.01", `:LIST1:VOLT "1,2"`,
		"INST:NSEL 1;:VOLT 3;:OUTP ON", "VOLT:PROT 3.5;STAT ON", "(@1,2:3)", "\"unterminated", ";;;", "CH1:VOLT 3"} {
		f.Add(s)
	}
	var ins []*Instrument
	for _, name := range Dialects() {
		in, err := New(Config{Dialect: name})
		if err != nil {
			f.Fatal(err)
		}
		ins = append(ins, in)
	}
	f.Cleanup(func() {
		for _, in := range ins {
			in.Close()
		}
	})
	f.Fuzz(func(t *testing.T, line string) {
		if strings.ContainsAny(line, "\n") || len(line) > 4096 {
			return
		}
		for _, in := range ins {
			a := in.Execute(line)
			if len(a) > maxUnits {
				t.Fatalf("%d answers", len(a))
			}
			in.Execute("*RST;*CLS")
		}
	})
}

func TestReadMessageBounded(t *testing.T) {
	long := bytes.Repeat([]byte("A"), maxLine+10)
	r := bufio.NewReader(io.MultiReader(bytes.NewReader(long), strings.NewReader("\n*IDN?\n")))
	l, err := readMessage(r)
	if err != nil || l != "*OVERFLOW" {
		t.Fatalf("long line: %.20q, %v", l, err)
	}
	if l, err = readMessage(r); err != nil || l != "*IDN?" {
		t.Fatalf("next: %q, %v", l, err)
	}
}

// FuzzReadTimeline: any file is read into events or refused with the line
// named, within the event bound.
func FuzzReadTimeline(f *testing.F) {
	f.Add([]byte(`{"time":"2026-01-01T00:00:00Z","t_s":0.1,"ch":1,"kind":"output","on":true,"volts":3.3,"amps":0.02}` + "\n"))
	f.Add([]byte("{}\n\n{\"ch\":\"x\"}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ev, err := ReadTimeline(bytes.NewReader(data), 16)
		if len(ev) > 16 {
			t.Fatalf("%d events beyond the bound", len(ev))
		}
		if err != nil && !strings.Contains(err.Error(), "timeline") {
			t.Fatalf("error %v does not say where", err)
		}
	})
}

// TestSetMeter: a load model's measurement replaces the built-in load's
// while the output is on, and survives *RST.
func TestSetMeter(t *testing.T) {
	in := mustNew(t, Config{Dialect: "keysight-e36"})
	if err := in.SetMeter(1, func() (float64, float64) { return 2.345, 0.0125 }); err != nil {
		t.Fatal(err)
	}
	if err := in.SetMeter(2, nil); err == nil {
		t.Fatal("SetMeter on a missing output: no error")
	}
	in.Execute("*RST;VOLT 3.3;OUTP ON")
	num := func(s string) float64 {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	if got := in.Execute("MEAS:VOLT?;:MEAS:CURR?"); len(got) != 2 || num(got[0]) != 2.345 || num(got[1]) != 0.0125 {
		t.Fatalf("measured %q, want the meter's 2.345 V and 12.5 mA", got)
	}
	in.Execute("OUTP OFF")
	if got := in.Execute("MEAS:VOLT?"); len(got) != 1 || num(got[0]) != 0 {
		t.Fatalf("off: measured %q, want 0", got)
	}
}
