package scpi_test

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/batteryless/harness/boards/supply/emulator"
	"github.com/batteryless/harness/boards/supply/scpi"
	"github.com/batteryless/harness/harness/testenv"
)

func emulated(t *testing.T, dialect string) (*emulator.Instrument, scpi.Transport) {
	t.Helper()
	in, err := emulator.New(emulator.Config{Dialect: dialect})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	addr, err := in.ServeTCP(ctx, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); in.Close() })
	return in, scpi.TCP{Addr: addr.String()}
}

// TestUnansweredQueryTimesOutNamingIt: an instrument does not answer a
// query it does not know; the client gives up at its deadline, names the
// query, and the next checkpoint finds the instrument's -113.
func TestUnansweredQueryTimesOutNamingIt(t *testing.T) {
	_, tr := emulated(t, "keysight-e36")
	var log bytes.Buffer
	c, err := scpi.Dial(context.Background(), tr, scpi.Options{Timeout: 300 * time.Millisecond, Transcript: scpi.NewTranscript(&log)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	t0 := time.Now()
	_, err = c.Query(ctx, "VOLT:PROT:BOGUS?")
	took := time.Since(t0)
	if !errors.Is(err, scpi.ErrTimeout) || !strings.Contains(err.Error(), `"VOLT:PROT:BOGUS?"`) {
		t.Fatalf("err = %v, want a timeout naming the query", err)
	}
	if took < 250*time.Millisecond || took > 2*time.Second {
		t.Fatalf("gave up after %v, want about the 300 ms timeout", took)
	}
	err = c.Checkpoint(ctx, "after the bogus query")
	var qe *scpi.QueueError
	if !errors.As(err, &qe) || !qe.Has(-113) || !strings.Contains(err.Error(), "VOLT:PROT:BOGUS?") {
		t.Fatalf("checkpoint: %v, want -113 naming the query", err)
	}
	// A timed-out connection is not reused (its late answer would answer
	// the next query); the emulator may refuse the first redial while it
	// still serves the old connection.
	if n := c.Reconnects(); n < 1 || n > 2 {
		t.Fatalf("%d reconnects, want 1 or 2", n)
	}
	if !strings.Contains(log.String(), "! \"VOLT:PROT:BOGUS?\": no answer in time") {
		t.Fatalf("transcript lacks the timeout:\n%s", log.String())
	}
}

// TestContextDeadlineBoundsTheCall: the context's deadline, when earlier
// than the client's timeout, ends the call.
func TestContextDeadlineBoundsTheCall(t *testing.T) {
	_, tr := emulated(t, "keysight-e36")
	c, err := scpi.Dial(context.Background(), tr, scpi.Options{Timeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 150*time.Millisecond)
	defer cancel()
	t0 := time.Now()
	_, err = c.Query(ctx, "NOPE?")
	if err == nil || time.Since(t0) > 2*time.Second {
		t.Fatalf("err %v after %v, want an error near 150 ms", err, time.Since(t0))
	}
	if !strings.Contains(err.Error(), `"NOPE?"`) {
		t.Fatalf("err = %v, want the query named", err)
	}
}

// TestDisconnectMidCommandReportedAndRecovered: the instrument drops the
// connection while a query is in flight; the call fails naming the lost
// connection and the command, and the next call dials again and works.
func TestDisconnectMidCommandReportedAndRecovered(t *testing.T) {
	in, tr := emulated(t, "keysight-n67")
	c, err := scpi.Dial(context.Background(), tr, scpi.Options{Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	if _, err := c.Query(ctx, "*IDN?"); err != nil {
		t.Fatal(err)
	}
	in.DisconnectAfter(1)
	_, err = c.Query(ctx, "MEAS:VOLT? (@1)")
	if !errors.Is(err, scpi.ErrConnectionLost) || !strings.Contains(err.Error(), "MEAS:VOLT? (@1)") {
		t.Fatalf("err = %v, want a lost connection naming the query", err)
	}
	// The emulator frees its single client slot once it sees the close.
	var v float64
	for range 50 {
		if v, err = c.QueryFloat(ctx, "MEAS:VOLT? (@1)"); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil || v != 0 {
		t.Fatalf("after the reconnect: %v, %v", v, err)
	}
	if c.Reconnects() < 1 {
		t.Fatal("no reconnect counted")
	}
}

// TestOutOfRangeSetpointReported: a setpoint the instrument refuses (-222)
// is reported at the next checkpoint with the command that caused it.
func TestOutOfRangeSetpointReported(t *testing.T) {
	in, tr := emulated(t, "keysight-e36")
	c, err := scpi.Dial(context.Background(), tr, scpi.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	if err := c.Write(ctx, "VOLT 99"); err != nil {
		t.Fatal(err)
	}
	err = c.Checkpoint(ctx, "after configuration")
	var qe *scpi.QueueError
	if !errors.As(err, &qe) || !qe.Has(-222) {
		t.Fatalf("checkpoint: %v, want -222", err)
	}
	if !strings.Contains(err.Error(), "after configuration") || !strings.Contains(err.Error(), "VOLT 99") || !strings.Contains(err.Error(), "Data out of range") {
		t.Fatalf("checkpoint error %q does not name where, the command and the entry", err)
	}
	if in.State(1).Volts != 0 {
		t.Fatal("the refused setpoint was applied")
	}
	if err := c.Checkpoint(ctx, "again"); err != nil {
		t.Fatalf("the queue was not drained: %v", err)
	}
}

// TestSerialLineOverPTY talks to an RS-232 instrument on a pseudo-terminal.
func TestSerialLineOverPTY(t *testing.T) {
	in, err := emulator.New(emulator.Config{Dialect: "keysight-e36"})
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	path, err := in.ServePTY(ctx)
	if err != nil {
		testenv.Missing(t, "pseudo-terminals: "+err.Error(), "")
	}
	c, err := scpi.Dial(ctx, scpi.Serial{Path: path, Baud: 9600}, scpi.Options{Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ans, err := c.Query(ctx, "*IDN?")
	if err != nil || !strings.Contains(ans, "E3632A") {
		t.Fatalf("*IDN? = %q, %v", ans, err)
	}
	if err := c.Write(ctx, "APPL 3.3,0.02"); err != nil {
		t.Fatal(err)
	}
	if err := c.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if st := in.State(1); st.Volts != 3.3 || st.Amps != 0.02 {
		t.Fatalf("state %+v", st)
	}
	if !strings.HasPrefix(c.String(), "serial://"+path) {
		t.Fatal(c.String())
	}
}

// fake answers each line it reads with the next of answers (raw bytes).
func fake(t *testing.T, answers ...string) scpi.Transport {
	return scpi.StreamFunc{Name: "fake", Func: func(ctx context.Context) (scpi.Stream, error) {
		a, b := net.Pipe()
		go func() {
			defer b.Close()
			r := bufio.NewReader(b)
			for _, ans := range answers {
				if _, err := r.ReadString('\n'); err != nil {
					return
				}
				if _, err := io.WriteString(b, ans); err != nil {
					return
				}
			}
			io.Copy(io.Discard, r)
		}()
		return a, nil
	}}
}

func TestQueryBlock(t *testing.T) {
	ctx := context.Background()
	c := scpi.New(fake(t, "#15hello\n", "#210abcdefghij\r\n"), scpi.Options{})
	defer c.Close()
	for _, want := range []string{"hello", "abcdefghij"} {
		b, err := c.QueryBlock(ctx, "DATA?")
		if err != nil || string(b) != want {
			t.Fatalf("block %q, %v; want %q", b, err, want)
		}
	}
	// A header that promises more than comes: the deadline ends it.
	c = scpi.New(fake(t, "#19abc"), scpi.Options{Timeout: 200 * time.Millisecond})
	if _, err := c.QueryBlock(ctx, "DATA?"); !errors.Is(err, scpi.ErrTimeout) {
		t.Fatalf("lying header: %v", err)
	}
	// Too long for the limit: refused before reading it.
	c = scpi.New(fake(t, "#9999999999\n"), scpi.Options{MaxBlock: 1000})
	if _, err := c.QueryBlock(ctx, "DATA?"); !errors.Is(err, scpi.ErrTooLong) {
		t.Fatalf("huge block: %v", err)
	}
	// Bytes after the block: a framing error.
	c = scpi.New(fake(t, "#13abcXYZ\n"), scpi.Options{})
	if _, err := c.QueryBlock(ctx, "DATA?"); err == nil || !strings.Contains(err.Error(), "XYZ") {
		t.Fatalf("trailing bytes: %v", err)
	}
}

func TestSyncAndAnswerLimit(t *testing.T) {
	ctx := context.Background()
	c := scpi.New(fake(t, "1\n", "0\n"), scpi.Options{})
	if err := c.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if err := c.Sync(ctx); err == nil || !strings.Contains(err.Error(), `"*OPC?"`) {
		t.Fatalf("*OPC? answering 0: %v", err)
	}
	c = scpi.New(fake(t, strings.Repeat("x", 5000)+"\n"), scpi.Options{MaxAnswer: 100})
	if _, err := c.Query(ctx, "LONG?"); !errors.Is(err, scpi.ErrTooLong) {
		t.Fatalf("long answer: %v", err)
	}
	if err := c.Write(ctx, "A\nB"); err == nil {
		t.Fatal("a command with a line break was sent")
	}
}

func TestParsers(t *testing.T) {
	for s, want := range map[string]float64{"3.3": 3.3, " +3.30000E+00 ": 3.3, "-1": -1, "1e-3": 0.001} {
		if v, err := scpi.ParseFloat(s); err != nil || v != want {
			t.Errorf("ParseFloat(%q) = %v, %v", s, v, err)
		}
	}
	for _, s := range []string{"", "abc", "9.9E37", "NaN", "inf", "0x10", "1_0", "3.3V"} {
		if _, err := scpi.ParseFloat(s); err == nil {
			t.Errorf("ParseFloat(%q) accepted", s)
		}
	}
	for s, want := range map[string]scpi.Error{`-222,"Data out of range"`: {-222, "Data out of range"}, `+0,"No error"`: {0, "No error"}, "0  No Error": {0, "No Error"}} {
		if e, err := scpi.ParseError(s); err != nil || e != want {
			t.Errorf("ParseError(%q) = %v, %v", s, e, err)
		}
	}
	id, err := scpi.ParseIdentity("Siglent Technologies,SPD3303X,SPD3X,1.01,V3.0")
	if err != nil || id.Model != "SPD3303X" || id.Firmware != "1.01,V3.0" {
		t.Errorf("identity %+v, %v", id, err)
	}
	if _, err := scpi.ParseIdentity("just one field"); err == nil {
		t.Error("a one-field identity was accepted")
	}
	if b, err := scpi.ParseBool("YES"); err != nil || !b {
		t.Error("YES")
	}
	if v, err := scpi.ParseFloats("1,2,3", 3); err != nil || len(v) != 3 {
		t.Error(v, err)
	}
	if _, err := scpi.ParseFloats("1,2,3", 2); err == nil {
		t.Error("too many values accepted")
	}
}
