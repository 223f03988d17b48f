package linktest

import (
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/batteryless/harness/harness/wire"
)

// host is the host's end of an in-memory line to a board: no
// pseudo-terminal needed.
type host struct {
	t      *testing.T
	w      io.Writer
	frames chan frame
}

// frame is what the host reads: a message, or the reader's error for a
// bad frame.
type frame struct {
	seq uint16
	msg wire.Message
	bad *wire.Error
}

func pipeHost(t *testing.T, b *Board) *host {
	toBoard, fromHost := io.Pipe()
	fromBoard, toHost := io.Pipe()
	h := &host{t: t, w: fromHost, frames: make(chan frame, 64)}
	served := make(chan struct{})
	go func() {
		defer close(served)
		b.Serve(struct {
			io.Reader
			io.Writer
		}{toBoard, toHost})
	}()
	read := make(chan struct{})
	go func() {
		defer close(read)
		r := wire.NewReader(fromBoard)
		for {
			f, err := r.Next()
			var we *wire.Error
			switch {
			case errors.As(err, &we):
				h.frames <- frame{bad: we}
			case err != nil:
				return
			default:
				hd, m, err := wire.Unmarshal(f)
				if err != nil {
					t.Errorf("the board sent a frame it cannot have meant: %v", err)
				}
				h.frames <- frame{seq: hd.Seq, msg: m}
			}
		}
	}()
	t.Cleanup(func() {
		fromHost.Close()
		fromBoard.Close()
		<-served
		<-read
		b.Close()
	})
	return h
}

// send writes a command frame with sequence number seq.
func (h *host) send(seq uint16, m wire.Message) {
	h.t.Helper()
	f, err := wire.Encode(seq, m)
	if err != nil {
		h.t.Fatal(err)
	}
	if _, err := h.w.Write(append([]byte{0}, f...)); err != nil {
		h.t.Fatal(err)
	}
}

// frame is what comes next from the board.
func (h *host) frame() frame {
	h.t.Helper()
	select {
	case f := <-h.frames:
		return f
	case <-time.After(5 * time.Second):
		h.t.Fatal("nothing from the board")
		return frame{}
	}
}

// next is the next message from the board (nil for a bad frame).
func (h *host) next() wire.Message {
	h.t.Helper()
	return h.frame().msg
}

// ack sends a command and returns its ACK.
func (h *host) ack(seq uint16, m wire.Message) *wire.Ack {
	h.t.Helper()
	h.send(seq, m)
	a, ok := h.next().(*wire.Ack)
	if !ok || a.Cmd != m.Type() {
		h.t.Fatalf("%v: answered %+v", m.Type(), a)
	}
	return a
}

// TestHistory: a retransmitted command (same sequence number, type and CRC)
// is answered again with its first answer and not executed again; the same
// sequence number with other bytes is a new command; HELLO and a power
// cycle clear the history, as PROTOCOL.md says.
func TestHistory(t *testing.T) {
	LeakCheck(t)
	b := New(Config{InputBytes: 64})
	h := pipeHost(t, b)
	tooFar := &wire.SetInput{Offset: 63, Data: []byte{1, 2}}
	for i := range 2 {
		if a := h.ack(6, tooFar); a.Status != wire.StatusBadRange || a.Detail != 64 {
			t.Errorf("answer %d of a SET_INPUT past the end: %+v", i, a)
		}
	}
	if s := b.Stats(); s.Executed[wire.TypeSetInput] != 1 || s.Duplicates != 1 {
		t.Errorf("a retransmission: %d executed, %d duplicates; want 1, 1", s.Executed[wire.TypeSetInput], s.Duplicates)
	}
	if a := h.ack(6, &wire.SetInput{Data: []byte{9}}); a.Status != wire.StatusOK {
		t.Errorf("a new command with a known sequence number: %+v", a)
	}
	b.PowerCycle()
	if m, ok := h.next().(*wire.Boot); !ok || m.Boots != 2 {
		t.Errorf("after a power cycle: %+v, want BOOT 2", m)
	}
	h.ack(6, tooFar)
	h.send(7, &wire.Hello{})
	if id, ok := h.next().(*wire.Identity); !ok || id.Window != 8 || id.Flags&wire.IdentityImageValid == 0 {
		t.Errorf("identity %+v", id)
	}
	h.ack(6, tooFar)
	if s := b.Stats(); s.Executed[wire.TypeSetInput] != 4 || s.Duplicates != 1 {
		t.Errorf("after a power cycle and a HELLO: %d executed, %d duplicates; want 4, 1", s.Executed[wire.TypeSetInput], s.Duplicates)
	}
}

// TestFrameFaults: a corrupted and a cut frame reach the host as bad
// frames, a dropped one not at all, and a BOOT told to brown out is cut
// (the board still comes up once).
func TestFrameFaults(t *testing.T) {
	LeakCheck(t)
	faults := map[int]Fault{1: Corrupt, 2: Cut, 3: Drop}
	b := New(Config{OnFrame: func(n int, m wire.Message) Fault {
		if m.Type() == wire.TypeBoot {
			return BrownOut
		}
		return faults[n]
	}})
	h := pipeHost(t, b)
	for seq := uint16(1); seq <= 4; seq++ {
		h.send(seq, &wire.Hello{})
	}
	for i, want := range []string{"bad frame", "bad frame", "IDENTITY 4"} {
		got := "bad frame"
		if f := h.frame(); f.bad == nil {
			got = fmt.Sprintf("%v %d", f.msg.Type(), f.seq)
		}
		if got != want {
			t.Errorf("frame %d: %s, want %s", i, got, want)
		}
	}
	b.PowerCycle()
	h.send(5, &wire.Hello{}) // its answer's delimiter ends the half BOOT
	if f := h.frame(); f.bad == nil {
		t.Errorf("the BOOT was not cut: %+v", f.msg)
	}
	if id, ok := h.next().(*wire.Identity); !ok || id.Boots != 2 {
		t.Errorf("after the BOOT: %+v, want IDENTITY with 2 boots", id)
	}
	if s := b.Stats(); s.Cycles != 1 || s.Boots != 2 {
		t.Errorf("%+v: want one power cycle", s)
	}
}

// TestSetNVM: the region READ_NVM reads, filled by a test; a write past
// its end is an error, not a panic.
func TestSetNVM(t *testing.T) {
	LeakCheck(t)
	b := New(Config{NVMBytes: 128})
	h := pipeHost(t, b)
	if err := b.SetNVM(120, []byte("12345678")); err != nil {
		t.Fatal(err)
	}
	h.send(1, &wire.ReadNVM{Offset: 124, Length: 4})
	if d, ok := h.next().(*wire.Data); !ok || string(d.Data) != "5678" || d.Offset != 124 {
		t.Errorf("READ_NVM: %+v", d)
	}
	for _, off := range []int{121, -1, 129} {
		if err := b.SetNVM(off, []byte("12345678")); err == nil {
			t.Errorf("SetNVM at %d of a region of 128 bytes: no error", off)
		}
	}
}
