package firmwaretest

import (
	"bytes"
	"context"
	"hash/crc32"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/batteryless/harness/harness/testenv"

	"github.com/creack/pty"
	"golang.org/x/term"

	"github.com/batteryless/harness/boards/profiles"
	"github.com/batteryless/harness/harness/bundled"
	"github.com/batteryless/harness/harness/link"
	"github.com/batteryless/harness/harness/plan"
	"github.com/batteryless/harness/harness/refexec"
	"github.com/batteryless/harness/harness/sched"
	"github.com/batteryless/harness/harness/wire"
)

// startBoard runs firmware/build/host/board (app.c's wire loop on the host
// port) on the master of a pty pair, and opens a link on the slave. The
// process is killed when the test ends.
func startBoard(t *testing.T, args ...string) *link.Link {
	t.Helper()
	exe := bin(t, "board")
	master, slave, err := pty.Open()
	if err != nil {
		testenv.Missing(t, "no pseudo-terminals here: "+err.Error(), "")
	}
	if _, err := term.MakeRaw(int(slave.Fd())); err != nil {
		t.Fatalf("raw mode: %v", err)
	}
	var stderr bytes.Buffer
	cmd := exec.Command(exe, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = master, master, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	var l *link.Link
	t.Cleanup(func() {
		if l != nil {
			l.Close()
		}
		cmd.Process.Kill()
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			t.Errorf("board process did not exit after kill")
		}
		master.Close()
		slave.Close()
		if t.Failed() {
			t.Logf("board stderr:\n%s", stderr.String())
		}
	})
	l, err = link.Open(context.Background(), link.Config{Path: slave.Name()})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// runOnBoard deploys the bundled model's tile plan (msp430fr5994), writes
// the bundled input, starts inference 1 and waits for its RESULT; it
// returns the output read back and the BOOT events seen after START.
func runOnBoard(t *testing.T, l *link.Link, img, input, want []byte) (out []byte, boots []*wire.Boot) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	id, err := l.Hello(ctx)
	if err != nil {
		t.Fatalf("Hello: %v", err)
	}
	if id.Name != "msp430fr5994" {
		t.Errorf("IDENTITY name %q", id.Name)
	}
	if err := l.Deploy(ctx, img); err != nil {
		t.Fatalf("Deploy: %v", err)
	}
	if err := l.SetInput(ctx, input); err != nil {
		t.Fatalf("SetInput: %v", err)
	}
	// Events before START are not the inference's.
	for drained := false; !drained; {
		select {
		case <-l.Events():
		default:
			drained = true
		}
	}
	if err := l.Start(ctx, 1); err != nil {
		t.Fatalf("Start: %v", err)
	}
	var res *wire.Result
	tasks := 0
	for res == nil {
		select {
		case ev := <-l.Events():
			if ev.Kind != link.BoardEvent {
				continue
			}
			switch m := ev.Msg.(type) {
			case *wire.Boot:
				boots = append(boots, m)
			case *wire.TaskDone:
				tasks++
			case *wire.Result:
				res = m
			}
		case <-ctx.Done():
			t.Fatalf("no RESULT within the time limit (%d TASK_DONE, %d BOOT)", tasks, len(boots))
		}
	}
	if res.Inference != 1 || res.Length != uint32(len(want)) || res.CRC != crc32.ChecksumIEEE(want) {
		t.Errorf("RESULT %+v, want inference 1 length %d crc %#08x", *res, len(want), crc32.ChecksumIEEE(want))
	}
	out, err = l.ReadOutput(ctx, 0, len(want))
	if err != nil {
		t.Fatalf("ReadOutput: %v", err)
	}
	// The started inference number is in NVM header bytes 12..15, and a
	// START with it again is acknowledged but not executed.
	hdr, err := l.ReadNVM(ctx, 12, 4)
	if err != nil {
		t.Fatalf("ReadNVM: %v", err)
	}
	if !bytes.Equal(hdr, []byte{1, 0, 0, 0}) {
		t.Errorf("NVM bytes 12..15 = %x, want the started inference 1", hdr)
	}
	if err := l.Start(ctx, 1); err != nil {
		t.Fatalf("Start again: %v", err)
	}
	quiet := time.After(300 * time.Millisecond)
	for waiting := true; waiting; {
		select {
		case ev := <-l.Events():
			if ev.Kind == link.BoardEvent {
				if _, ok := ev.Msg.(*wire.Boot); !ok {
					t.Errorf("a repeated START 1 was executed: event %T", ev.Msg)
					waiting = false
				}
			}
		case <-quiet:
			waiting = false
		}
	}
	t.Logf("%d TASK_DONE events, %d BOOT events after START", tasks, len(boots))
	return out, boots
}

func boardDeployment(t *testing.T) (img, input, want []byte) {
	t.Helper()
	m := bundledModel(t)
	prof, err := profiles.Load("msp430fr5994")
	if err != nil {
		t.Fatal(err)
	}
	s, err := sched.Get("tile")
	if err != nil {
		t.Fatal(err)
	}
	p, err := s.Schedule(m, prof, sched.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if img, err = plan.EncodeImage(m, p); err != nil {
		t.Fatal(err)
	}
	input = bundled.Input()
	if want, err = refexec.New(m).Run(input); err != nil {
		t.Fatal(err)
	}
	return img, input, want
}

// TestBoardOverLink: the firmware's main loop (app.c) on the host port,
// driven over a pty by harness/link: deploy, input, start, result, output.
func TestBoardOverLink(t *testing.T) {
	img, input, want := boardDeployment(t)
	l := startBoard(t)
	out, _ := runOnBoard(t, l, img, input, want)
	if !bytes.Equal(out, want) {
		t.Errorf("output %x, reference %x", out, want)
	}
}

// TestBoardOverLinkBrownouts: the same with a power failure every 300 NVM
// words: the board reboots (BOOT) and resumes at increasing progress words,
// and the output still equals the reference.
func TestBoardOverLinkBrownouts(t *testing.T) {
	if _, err := os.Stat("/dev/ptmx"); err != nil {
		testenv.Missing(t, "no pseudo-terminals here (/dev/ptmx)", "")
	}
	img, input, want := boardDeployment(t)
	l := startBoard(t, "--brownout-every", strconv.Itoa(300))
	out, boots := runOnBoard(t, l, img, input, want)
	if !bytes.Equal(out, want) {
		t.Errorf("output %x, reference %x", out, want)
	}
	if len(boots) < 2 {
		t.Fatalf("%d BOOT events during the inference, want several", len(boots))
	}
	for i, b := range boots {
		if i > 0 && b.Resume < boots[i-1].Resume {
			t.Errorf("BOOT %d resumes at %d, after BOOT %d at %d", i, b.Resume, i-1, boots[i-1].Resume)
		}
		if b.Reason != wire.BootPowerOn {
			t.Errorf("BOOT %d: reason %d, want POWER_ON", i, b.Reason)
		}
		if want := wire.BootNVMValid | wire.BootImageValid | wire.BootRunning; b.Flags != want {
			t.Errorf("BOOT %d: flags %#02x, want %#02x (NVM and image valid, running)", i, b.Flags, want)
		}
	}
	if first, last := boots[0].Resume, boots[len(boots)-1].Resume; last <= first {
		t.Errorf("resume points do not increase: %d .. %d", first, last)
	}
}
