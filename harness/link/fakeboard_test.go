package link

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"sync"
	"testing"

	"github.com/batteryless/harness/harness/testenv"

	"github.com/batteryless/harness/harness/wire"
	"github.com/creack/pty"
	"golang.org/x/term"
)

// fakeBoard speaks the board side of the protocol (PROTOCOL.md) over a
// byte line, with faults a test can switch on: frames dropped on the way in
// or out, answers corrupted or cut in half, garbage on the line, silence.
type fakeBoard struct {
	mu sync.Mutex

	image      []byte
	imageValid bool
	input      []byte
	output     []byte
	nvm        []byte
	boots      uint32
	rxErrors   uint16
	hist       []histEntry // the last historyLen commands executed
	evSeq      uint16
	started    bool
	inference  uint32
	tasks      int

	// Counters.
	executed map[wire.Type]int
	dupes    int
	chunks   int

	// Faults, decided per frame with the count of frames seen so far.
	dropIn     func(n int, h wire.Header) bool // the frame never arrives
	dropAnswer func(n int, h wire.Header) bool // executed, but its answer is lost
	corrupt    func(n int) bool                // an answer has a byte flipped
	cut        func(n int) bool                // only the first half of an answer is sent
	garbage    func(n int) []byte              // written before an answer
	silent     bool                            // reads and ignores everything
	onChunk    func(n int)                     // after each new DEPLOY_CHUNK executed (without the lock)

	nIn, nOut int
	w         io.Writer
}

type histEntry struct {
	seq    uint16
	typ    wire.Type
	crc    uint32
	status wire.Status
	detail uint32
}

// historyLen is the board's de-duplication history: 2*window, so that a
// retransmission still finds its command after every other command of
// both windows around it ran (PROTOCOL.md).
const historyLen = 16

func newFakeBoard() *fakeBoard {
	return &fakeBoard{
		image:    make([]byte, 64<<10),
		input:    make([]byte, 490),
		output:   make([]byte, 300),
		nvm:      make([]byte, 4096),
		boots:    1,
		tasks:    3,
		executed: map[wire.Type]int{},
	}
}

// serve answers commands read from rw until reading fails.
func (b *fakeBoard) serve(rw io.ReadWriter) error {
	b.mu.Lock()
	b.w = rw
	b.mu.Unlock()
	r := wire.NewReader(rw)
	for {
		f, err := r.Next()
		if err != nil {
			var we *wire.Error
			if errors.As(err, &we) {
				b.mu.Lock()
				b.rxErrors++
				b.mu.Unlock()
				continue
			}
			return err
		}
		b.frame(f)
	}
}

func (b *fakeBoard) frame(f []byte) {
	b.mu.Lock()
	var after func()
	defer func() {
		b.mu.Unlock()
		if after != nil {
			after()
		}
	}()
	b.nIn++
	h, m, err := wire.Unmarshal(f)
	if b.silent || (b.dropIn != nil && b.dropIn(b.nIn, h)) {
		return
	}
	if err != nil {
		var we *wire.Error
		errors.As(err, &we)
		switch {
		case we != nil && we.Kind == wire.KindVersion:
			b.answer(h, &wire.Ack{Status: wire.StatusUnsupportedVersion, Cmd: h.Type, Detail: wire.Version})
		case we != nil && we.Kind == wire.KindType && h.Type.IsCommand():
			b.answer(h, &wire.Ack{Status: wire.StatusUnknownType, Cmd: h.Type})
		case we != nil && we.Kind == wire.KindLength:
			b.answer(h, &wire.Ack{Status: wire.StatusBadLength, Cmd: h.Type})
		}
		return
	}
	if !h.Type.IsCommand() {
		return
	}
	crc := binary.LittleEndian.Uint32(f[len(f)-4:])
	if h.Type != wire.TypeHello {
		for _, e := range b.hist {
			if e.seq == h.Seq && e.crc == crc && e.typ == h.Type {
				b.dupes++
				if b.dropAnswer != nil && b.dropAnswer(b.nIn, h) {
					return
				}
				switch h.Type {
				case wire.TypeReadOutput, wire.TypeReadNVM:
					b.answer(h, b.read(h, m)) // reading again changes nothing
				default:
					b.answer(h, &wire.Ack{Status: e.status, Cmd: e.typ, Detail: e.detail})
				}
				return
			}
		}
	}
	b.executed[h.Type]++
	var ans wire.Message
	switch m := m.(type) {
	case *wire.Hello:
		b.hist = nil
		ans = &wire.Identity{Firmware: 0x00010000, NVMBytes: uint32(len(b.nvm)), ImageBytes: uint32(len(b.image)),
			Boots: b.boots, RxErrors: b.rxErrors, Window: historyLen / 2, Flags: flag(b.imageValid, wire.IdentityImageValid), Name: "fakeboard"}
	case *wire.DeployChunk:
		if int(m.Offset)+len(m.Data) > len(b.image) {
			ans = &wire.Ack{Status: wire.StatusBadRange, Cmd: h.Type, Detail: uint32(len(b.image))}
			break
		}
		copy(b.image[m.Offset:], m.Data)
		b.imageValid = false
		b.chunks++
		if b.onChunk != nil {
			n, fn := b.chunks, b.onChunk
			after = func() { fn(n) }
		}
		ans = &wire.Ack{Cmd: h.Type}
	case *wire.DeployCommit:
		if int(m.Length) > len(b.image) {
			ans = &wire.Ack{Status: wire.StatusBadRange, Cmd: h.Type, Detail: uint32(len(b.image))}
			break
		}
		if c := wire.Checksum(b.image[:m.Length]); c != m.CRC {
			ans = &wire.Ack{Status: wire.StatusBadCRC, Cmd: h.Type, Detail: c}
			break
		}
		b.imageValid = true
		ans = &wire.Ack{Cmd: h.Type}
	case *wire.SetInput:
		if int(m.Offset)+len(m.Data) > len(b.input) {
			ans = &wire.Ack{Status: wire.StatusBadRange, Cmd: h.Type, Detail: uint32(len(b.input))}
			break
		}
		copy(b.input[m.Offset:], m.Data)
		ans = &wire.Ack{Cmd: h.Type}
	case *wire.Start:
		if !b.imageValid {
			ans = &wire.Ack{Status: wire.StatusNoImage, Cmd: h.Type}
			break
		}
		ans = &wire.Ack{Cmd: h.Type}
		if b.started && b.inference == m.Inference {
			break // already started: not again
		}
		b.started, b.inference = true, m.Inference
		defer b.run()
	case *wire.ReadOutput, *wire.ReadNVM:
		ans = b.read(h, m)
	case *wire.ResetCounters:
		b.boots, b.rxErrors = 0, 0
		ans = &wire.Ack{Cmd: h.Type}
	}
	if a, ok := ans.(*wire.Ack); ok {
		b.hist = append(b.hist, histEntry{seq: h.Seq, typ: h.Type, crc: crc, status: a.Status, detail: a.Detail})
	} else {
		b.hist = append(b.hist, histEntry{seq: h.Seq, typ: h.Type, crc: crc})
	}
	if len(b.hist) > historyLen {
		b.hist = b.hist[1:]
	}
	if b.dropAnswer != nil && b.dropAnswer(b.nIn, h) {
		return
	}
	b.answer(h, ans)
}

func (b *fakeBoard) read(h wire.Header, m wire.Message) wire.Message {
	var src []byte
	var off uint32
	var n uint16
	switch m := m.(type) {
	case *wire.ReadOutput:
		src, off, n = b.output, m.Offset, m.Length
	case *wire.ReadNVM:
		src, off, n = b.nvm, m.Offset, m.Length
	}
	if uint64(off)+uint64(n) > uint64(len(src)) {
		return &wire.Ack{Status: wire.StatusBadRange, Cmd: h.Type, Detail: uint32(len(src))}
	}
	return &wire.Data{Offset: off, Data: bytes.Clone(src[off : off+uint32(n)])}
}

func flag(c bool, f uint8) uint8 {
	if c {
		return f
	}
	return 0
}

// run performs an "inference": the output is the input with every byte
// xored with 0x5A, and the events a real board sends.
func (b *fakeBoard) run() {
	for i := range b.output {
		b.output[i] = b.input[i%len(b.input)] ^ 0x5A
	}
	for t := 0; t < b.tasks; t++ {
		b.emit(&wire.TaskDone{Task: uint32(t), Cycles: uint32(1000 + t)})
		b.emit(&wire.Commit{Progress: uint32(t + 1), Kind: wire.CommitTask})
	}
	b.emit(&wire.Result{Inference: b.inference, Length: uint32(len(b.output)), CRC: wire.Checksum(b.output)})
}

// emit sends an event with the next event sequence number.
func (b *fakeBoard) emit(m wire.Message) {
	b.send(b.evSeq, m)
	b.evSeq++
}

// lose advances the event sequence without sending (events lost on the line).
func (b *fakeBoard) lose(n int) { b.evSeq += uint16(n) }

// reboot is a brown-out and a boot: SRAM state (history, event sequence)
// is lost; a BOOT event with sequence 0 goes out unless lost.
func (b *fakeBoard) reboot(sendBoot bool) {
	b.hist, b.evSeq, b.started = nil, 0, false
	b.boots++
	if sendBoot {
		b.emit(&wire.Boot{Boots: b.boots, Resume: 1, Reason: wire.BootPowerOn, Flags: wire.BootNVMValid | wire.BootImageValid | wire.BootRunning})
	} else {
		b.evSeq++
	}
}

func (b *fakeBoard) answer(h wire.Header, m wire.Message) { b.send(h.Seq, m) }

// send writes a frame, with the output faults.
func (b *fakeBoard) send(seq uint16, m wire.Message) {
	if b.w == nil {
		return
	}
	b.nOut++
	out, err := wire.Encode(seq, m)
	if err != nil {
		panic(err)
	}
	if b.garbage != nil {
		b.w.Write(b.garbage(b.nOut))
	}
	out = append([]byte{0}, out...) // a board sends a delimiter before every frame
	if b.corrupt != nil && b.corrupt(b.nOut) {
		out[len(out)/2] ^= 0x20
		if out[len(out)/2] == 0 {
			out[len(out)/2] = 0x01
		}
	}
	if b.cut != nil && b.cut(b.nOut) {
		out = out[:len(out)/2]
	}
	b.w.Write(out)
}

func (b *fakeBoard) with(f func()) {
	b.mu.Lock()
	defer b.mu.Unlock()
	f()
}

// rawPty opens a pseudo-terminal pair in raw mode (no echo, no line
// editing, 8-bit clean).
func rawPty(t testing.TB) (master, slave *os.File) {
	t.Helper()
	m, s, err := pty.Open()
	if err != nil {
		testenv.Missing(t, "no pseudo-terminals here: "+err.Error(), "")
	}
	rc, err := s.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var rawErr error
	if err := rc.Control(func(fd uintptr) { _, rawErr = term.MakeRaw(int(fd)) }); err != nil || rawErr != nil {
		t.Fatalf("raw mode: %v %v", err, rawErr)
	}
	return m, s
}
