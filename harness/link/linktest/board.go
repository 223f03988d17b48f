// Package linktest is a fake board for tests: it speaks the board side of the
// wire protocol (firmware/PROTOCOL.md) the way the firmware does
// (firmware/ports/common/app.c), on any byte line or on a pseudo-terminal,
// with faults a test switches on per frame or per task. It serves the tests
// of harness/link (frames lost on the way in or out, corrupted or cut in
// half, garbage on the line, silence) and of boards/serialboard (brown-outs,
// hangs, a dead board, a port that vanishes and comes back, lost progress),
// and any other test that needs a board at the end of a serial line.
//
// The board has a plan of Tasks tasks. Its "NVM" (what survives a power
// cycle) holds the image area and whether its image is valid, the input and
// output tensors, the progress word, the number of the inference it started,
// the boot count, and a region that READ_NVM reads (filled by SetNVM); its
// "SRAM" (lost at every power cycle) holds the de-duplication history, the
// task it runs next, whether it runs, the event sequence and whether it
// hangs. START resets the progress word and runs the tasks one by one on a
// goroutine of its own: each task does its work (TaskTime of wall time),
// commits (every CommitEvery tasks and after the last: the progress word is
// written before the events, as the runtime does), then sends TASK_DONE and
// COMMIT; after the last task RESULT with the CRC-32 of the output, which is
// Expected(input). A power cycle (PowerCycle, or a BrownOut fault) loses the
// SRAM, sends a 0x00 and BOOT (event sequence 0, resume = the progress word,
// the flags of PROTOCOL.md) and resumes the inference at the progress word.
//
// Commands are de-duplicated as the firmware does: a frame whose sequence
// number, type and CRC match one of the last 16 executed is answered again
// from the history (reads are read again) and not executed again; HELLO and
// a power cycle clear the history, and START is de-duplicated by its
// inference number in NVM. DEPLOY_CHUNK and DEPLOY_COMMIT write and check the
// image area as the host board program does, or are refused as the ports
// with a plan in flash do (ReadOnlyImage); what is deployed does not change
// what the board computes.
//
// Serve a Board on any io.ReadWriter, or Attach it to a pseudo-terminal whose
// path a link opens as a serial port.
package linktest

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"maps"
	"sync"
	"time"

	"github.com/batteryless/harness/harness/wire"
)

// Fault is what happens to the board at a point a test chooses.
type Fault int

// Faults. Which apply where: on a frame the board receives (OnReceive) Drop,
// BrownOut, Hang and Die; on a frame it sends (OnFrame) all of them; on a
// task (OnTask) BrownOut, Hang and Die. The others act as None there.
const (
	None Fault = iota
	// Drop: the frame is lost on the line. A frame received never arrives;
	// a frame sent never leaves (the board goes on as if it had).
	Drop
	// Cut: only the first half of the frame goes out (line noise); the
	// board goes on as if it had been sent.
	Cut
	// Corrupt: a byte in the middle of the frame is changed on the line.
	Corrupt
	// BrownOut: the power fails. On a frame sent: halfway through it (the
	// frame is cut); on a frame received: before the board executes it; in
	// a task: before the task commits (its work is lost). The board then
	// boots (0x00, BOOT) and resumes from its NVM. A BOOT frame cannot
	// brown out (the board would never come up): it is cut instead.
	BrownOut
	// Hang: the board stops where it is and stays silent while powered,
	// until a power cycle.
	Hang
	// Die: like Hang, but power cycles do not revive it: it never sends or
	// answers anything again.
	Die
)

// Config of a fake board. Zero fields take the defaults. The hooks are
// called with the board's lock held (they must not call the board); they
// decide, they do not act (closing a channel a test waits on is fine).
type Config struct {
	Tasks       int           // tasks of the plan; default 8
	CommitEvery int           // the progress word is written after every CommitEvery tasks and after the last; default 1
	InputBytes  int           // default 64
	OutputBytes int           // default 32
	NVMBytes    int           // the region READ_NVM reads (IDENTITY's nvm); default 4096
	ImageBytes  int           // the image area's capacity (IDENTITY's image); default 4096
	TaskTime    time.Duration // wall time of one task's work; default 2 ms
	Name        string        // IDENTITY's name; default "fakeboard"

	// NoImage: the board comes without a valid image (a fresh board):
	// START and SET_INPUT answer NO_IMAGE until a deploy.
	NoImage bool
	// ReadOnlyImage: the plan is linked into flash: DEPLOY_CHUNK and
	// DEPLOY_COMMIT answer FAILED, detail 1, as the ports do.
	ReadOnlyImage bool
	// ImageFault, if set, may change the image area before DEPLOY_COMMIT
	// checks its CRC (bytes that changed on the way or in the area).
	ImageFault func(area []byte)

	// OnReceive decides the fault of the n-th intact frame the board reads
	// (n counts from 1; h is the frame's header).
	OnReceive func(n int, h wire.Header) Fault
	// OnFrame decides the fault of the n-th frame the board is about to
	// send (answers, events and BOOT; n counts from 1).
	OnFrame func(n int, m wire.Message) Fault
	// OnTask decides the fault of a task whose work is done, before it
	// commits and reports.
	OnTask func(task uint32) Fault
	// Noise, if set, is written on the line before the n-th frame the board
	// sends (before its leading 0x00), unless the frame is dropped:
	// garbage, half frames.
	Noise func(n int) []byte
	// NVMFault, if set, gives the progress word the board finds in its NVM
	// when it boots (a progress word that did not survive the power cycle).
	NVMFault func(progress uint32) uint32
	// AfterEvent, if set, is called on the board's task goroutine without
	// the lock after each event it sent (or tried to send) for a task: the
	// place for a test to act (unplug the port, wait).
	AfterEvent func(m wire.Message)
}

// Stats counts what the board did.
type Stats struct {
	Boots      uint32 // boot count (NVM), including the first power-up
	Cycles     int    // power cycles (PowerCycle and BrownOut faults)
	Starts     int    // STARTs that started an inference
	Tasks      int    // tasks run to their end, re-executions included
	RxErrors   int    // frames dropped by the board's receiver
	Commands   int    // command frames executed or answered
	Duplicates int    // retransmitted commands answered from the history, not executed again
	Progress   uint32 // the progress word
	Inference  uint32 // the inference started last
	Deploys    int    // DEPLOY_COMMITs that made an image valid
	// Executed counts the commands executed, by type (retransmissions
	// answered from the history are not).
	Executed map[wire.Type]int
}

// historyLen is the board's de-duplication history: 2*window, so that a
// retransmission still finds its command after every other command of both
// windows around it ran (PROTOCOL.md).
const historyLen = 16

// histEntry is a command executed, as the firmware's struct wire_history
// keeps it.
type histEntry struct {
	seq    uint16
	typ    wire.Type
	crc    uint32
	status wire.Status
	detail uint32
}

// Board is a fake board. Serve it on a line (or Attach it to a
// pseudo-terminal); Close it at the end.
type Board struct {
	cfg  Config
	mu   sync.Mutex
	cond *sync.Cond

	// NVM
	input, output []byte
	nvm           []byte // what READ_NVM reads
	image         []byte // the image area
	imageLen      int    // the committed image's length
	imageValid    bool
	progress      uint32
	started       uint32 // the inference started last; 0: none since the image was committed
	nvmValid      bool   // an inference was started: the progress word means something
	boots         uint32

	// SRAM
	hist      []histEntry
	deploying bool   // a DEPLOY_CHUNK came since the last commit
	next      uint32 // the task the board runs next
	running   bool
	evSeq     uint16
	hung      bool

	gen       int  // power cycles so far: work begun before one is lost
	dead      bool // survives power cycles: Die
	closed    bool
	w         io.Writer // the line, nil while unplugged
	nIn, nOut int       // frames received and sent, for the hooks
	st        Stats
	done      chan struct{}
}

// New powers up a board with no inference started and starts its task
// goroutine. (Its first BOOT is not sent: it has no line yet.)
func New(cfg Config) *Board {
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&cfg.Tasks, 8)
	def(&cfg.CommitEvery, 1)
	def(&cfg.InputBytes, 64)
	def(&cfg.OutputBytes, 32)
	def(&cfg.NVMBytes, 4096)
	def(&cfg.ImageBytes, 4096)
	if cfg.TaskTime <= 0 {
		cfg.TaskTime = 2 * time.Millisecond
	}
	if cfg.Name == "" {
		cfg.Name = "fakeboard"
	}
	b := &Board{
		cfg:    cfg,
		input:  make([]byte, cfg.InputBytes),
		output: make([]byte, cfg.OutputBytes),
		nvm:    make([]byte, cfg.NVMBytes),
		image:  make([]byte, cfg.ImageBytes),
		// The image a board comes with (flashed, or deployed before).
		imageValid: !cfg.NoImage,
		boots:      1,
		done:       make(chan struct{}),
	}
	b.st.Executed = map[wire.Type]int{}
	b.cond = sync.NewCond(&b.mu)
	go b.run()
	return b
}

// Expected is the output the board computes from an input: what a test
// verifies the output read back against.
func Expected(input []byte, outputBytes int) []byte {
	out := make([]byte, outputBytes)
	if len(input) == 0 {
		return out
	}
	for i := range out {
		out[i] = input[i%len(input)] ^ 0x5A ^ byte(i)
	}
	return out
}

// Close stops the board's task goroutine. It does not close its line.
func (b *Board) Close() {
	b.mu.Lock()
	b.closed = true
	b.cond.Broadcast()
	b.mu.Unlock()
	<-b.done
}

// Stats returns the board's counters.
func (b *Board) Stats() Stats {
	b.mu.Lock()
	defer b.mu.Unlock()
	s := b.st
	s.Boots, s.Progress, s.Inference = b.boots, b.progress, b.started
	s.Executed = maps.Clone(b.st.Executed)
	return s
}

// Image returns the committed image (nil if none is valid).
func (b *Board) Image() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !b.imageValid || b.imageLen == 0 {
		return nil
	}
	return bytes.Clone(b.image[:b.imageLen])
}

// SetNVM writes data at offset of the region READ_NVM reads.
func (b *Board) SetNVM(offset int, data []byte) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if offset < 0 || offset > len(b.nvm) || len(data) > len(b.nvm)-offset {
		return fmt.Errorf("linktest: SetNVM of %d bytes at %d: the region holds %d", len(data), offset, len(b.nvm))
	}
	copy(b.nvm[offset:], data)
	return nil
}

// PowerCycle cuts the board's power and restores it: what a test's power
// strategy does to cycle the board.
func (b *Board) PowerCycle() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.reboot()
}

// Emit sends an event (a LOG, say) as the board's CPU does: with the next
// event sequence number, through OnFrame and Noise.
func (b *Board) Emit(m wire.Message) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.emit(m)
}

// Serve reads commands from the line and answers them on it until reading
// fails; the board's events go to the line it serves last.
func (b *Board) Serve(line io.ReadWriter) error {
	b.plug(line)
	defer func() {
		b.mu.Lock()
		if b.w == line {
			b.w = nil // unplugged: what the board sends is lost
		}
		b.mu.Unlock()
	}()
	r := wire.NewReader(line)
	for {
		f, err := r.Next()
		if err != nil {
			var we *wire.Error
			if errors.As(err, &we) {
				b.mu.Lock()
				b.st.RxErrors++
				b.mu.Unlock()
				continue
			}
			return err
		}
		b.receive(f)
	}
}

// plug makes line the one the board's events go to.
func (b *Board) plug(line io.Writer) {
	b.mu.Lock()
	b.w = line
	b.mu.Unlock()
}

// run is the board's CPU running the plan: one task at a time while an
// inference runs and the board is powered and not hung.
func (b *Board) run() {
	defer close(b.done)
	b.mu.Lock()
	defer b.mu.Unlock()
	for {
		for !b.closed && (!b.running || b.hung || b.dead) {
			b.cond.Wait()
		}
		if b.closed {
			return
		}
		gen, task := b.gen, b.next
		b.mu.Unlock()
		time.Sleep(b.cfg.TaskTime) // the task's work
		b.mu.Lock()
		if b.closed {
			return
		}
		if b.gen != gen || !b.running || b.hung || b.dead {
			continue // the power failed meanwhile: the work is lost
		}
		if b.cfg.OnTask != nil && b.strike(b.cfg.OnTask(task)) {
			continue
		}
		// The task wrote its outputs; the last one the output tensor.
		b.st.Tasks++
		b.next++
		last := int(b.next) == b.cfg.Tasks
		if last {
			copy(b.output, Expected(b.input, len(b.output)))
		}
		commit := last || int(b.next)%b.cfg.CommitEvery == 0
		if commit {
			b.progress = b.next
		}
		events := []wire.Message{&wire.TaskDone{Task: task, Cycles: 1000 + 17*task}}
		if commit {
			events = append(events, &wire.Commit{Progress: b.next, Kind: wire.CommitTask})
		}
		if last {
			b.running = false
			events = append(events, &wire.Result{Inference: b.started, Length: uint32(len(b.output)), CRC: wire.Checksum(b.output)})
		}
		for _, ev := range events {
			ok := b.emit(ev)
			if b.cfg.AfterEvent != nil {
				b.mu.Unlock()
				b.cfg.AfterEvent(ev)
				b.mu.Lock()
			}
			if !ok || b.gen != gen || b.closed {
				break // the board stopped or rebooted: the rest is not sent
			}
		}
	}
}

// strike applies a fault that stops the board where it is (BrownOut, Hang,
// Die) and reports whether it was one.
func (b *Board) strike(f Fault) bool {
	switch f {
	case BrownOut:
		b.reboot()
	case Hang:
		b.hung = true
	case Die:
		b.dead = true
	default:
		return false
	}
	return true
}

// reboot is a power failure and the boot after it.
func (b *Board) reboot() {
	b.gen++
	b.st.Cycles++
	b.hung, b.running, b.evSeq = false, false, 0
	b.hist, b.deploying = nil, false
	if b.dead {
		return
	}
	b.boots++
	if b.cfg.NVMFault != nil {
		b.progress = b.cfg.NVMFault(b.progress)
	}
	b.next = b.progress
	b.running = b.imageValid && b.nvmValid && int(b.progress) < b.cfg.Tasks
	var flags uint8
	if b.imageValid {
		flags |= wire.BootImageValid
	}
	if b.nvmValid {
		flags |= wire.BootNVMValid
	}
	if b.running {
		flags |= wire.BootRunning
	}
	b.send(0, &wire.Boot{Boots: b.boots, Resume: b.progress, Reason: wire.BootPowerOn, Flags: flags, Cycles: 4242})
	b.evSeq = 1
	b.cond.Broadcast()
}

// emit sends an event with the next event sequence number.
func (b *Board) emit(m wire.Message) bool {
	seq := b.evSeq
	b.evSeq++
	return b.send(seq, m)
}

// send writes a frame with its faults: a 0x00, the frame, as the firmware
// does. It reports whether the board is still running as before.
func (b *Board) send(seq uint16, m wire.Message) bool {
	if b.hung || b.dead {
		return false
	}
	b.nOut++
	n, f := b.nOut, None
	if b.cfg.OnFrame != nil {
		f = b.cfg.OnFrame(n, m)
	}
	if f == BrownOut && m.Type() == wire.TypeBoot {
		f = Cut
	}
	switch f {
	case Drop:
		return true
	case Hang, Die:
		return !b.strike(f)
	}
	frame, err := wire.Encode(seq, m)
	if err != nil {
		panic(fmt.Sprintf("linktest: %v", err)) // the board's own message: a bug here
	}
	out := append([]byte{0}, frame...)
	switch f {
	case Corrupt:
		i := len(out) / 2
		if out[i] ^= 0x20; out[i] == 0 {
			out[i] = 0x01 // a 0x00 would end the frame: a cut, not a corruption
		}
	case Cut, BrownOut:
		out = out[:len(out)/2]
	}
	if b.w != nil {
		if b.cfg.Noise != nil {
			b.w.Write(b.cfg.Noise(n))
		}
		b.w.Write(out) // a write to an unplugged line fails: the frame is lost
	}
	return !b.strike(f)
}

// receive handles one intact frame from the line: it executes a command
// and answers it, or answers a retransmission from the history.
func (b *Board) receive(f []byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.hung || b.dead {
		return
	}
	b.nIn++
	h, m, err := wire.Unmarshal(f)
	if b.cfg.OnReceive != nil {
		if flt := b.cfg.OnReceive(b.nIn, h); flt == Drop || b.strike(flt) {
			return
		}
	}
	if !h.Type.IsCommand() {
		return // responses, events: never answered
	}
	b.st.Commands++
	if err != nil {
		var we *wire.Error
		errors.As(err, &we)
		switch {
		case we == nil:
		case we.Kind == wire.KindVersion:
			b.send(h.Seq, &wire.Ack{Status: wire.StatusUnsupportedVersion, Cmd: h.Type, Detail: wire.Version})
		case we.Kind == wire.KindType:
			b.send(h.Seq, &wire.Ack{Status: wire.StatusUnknownType, Cmd: h.Type})
		case we.Kind == wire.KindLength || we.Kind == wire.KindField:
			b.send(h.Seq, &wire.Ack{Status: wire.StatusBadLength, Cmd: h.Type})
		}
		return
	}
	crc := binary.LittleEndian.Uint32(f[len(f)-4:])
	if h.Type == wire.TypeHello {
		b.hist = nil // a new host session
	} else if e, ok := b.recall(h, crc); ok {
		b.st.Duplicates++
		switch m := m.(type) {
		case *wire.ReadOutput:
			b.send(h.Seq, b.readOutput(m))
		case *wire.ReadNVM:
			b.send(h.Seq, read(h.Type, b.nvm, m.Offset, m.Length))
		default:
			b.send(h.Seq, &wire.Ack{Status: e.status, Cmd: h.Type, Detail: e.detail})
		}
		return
	}
	b.st.Executed[h.Type]++
	ans := b.execute(h, m)
	if h.Type != wire.TypeHello {
		b.remember(h, crc, ans)
	}
	// The answer goes out before the task goroutine, waiting for the lock,
	// sends START's first event.
	b.send(h.Seq, ans)
}

// recall finds a command in the history.
func (b *Board) recall(h wire.Header, crc uint32) (histEntry, bool) {
	for _, e := range b.hist {
		if e.seq == h.Seq && e.typ == h.Type && e.crc == crc {
			return e, true
		}
	}
	return histEntry{}, false
}

// remember puts an executed command into the history, the oldest out.
func (b *Board) remember(h wire.Header, crc uint32, ans wire.Message) {
	e := histEntry{seq: h.Seq, typ: h.Type, crc: crc}
	if a, ok := ans.(*wire.Ack); ok {
		e.status, e.detail = a.Status, a.Detail
	}
	b.hist = append(b.hist, e)
	if len(b.hist) > historyLen {
		b.hist = b.hist[1:]
	}
}

// execute runs one command (PROTOCOL.md, section 4) and returns its answer.
func (b *Board) execute(h wire.Header, m wire.Message) wire.Message {
	ack := &wire.Ack{Cmd: h.Type}
	switch m := m.(type) {
	case *wire.Hello:
		return b.identity()
	case *wire.DeployChunk:
		if b.refuseDeploy(ack, uint64(m.Offset)+uint64(len(m.Data))) {
			break
		}
		if !b.deploying {
			b.imageValid, b.deploying = false, true
		}
		copy(b.image[m.Offset:], m.Data)
	case *wire.DeployCommit:
		if b.refuseDeploy(ack, uint64(m.Length)) {
			break
		}
		if b.cfg.ImageFault != nil {
			b.cfg.ImageFault(b.image)
		}
		if crc := wire.Checksum(b.image[:m.Length]); crc != m.CRC {
			ack.Status, ack.Detail = wire.StatusBadCRC, crc
			break
		}
		// A new image starts a new series of inference numbers.
		b.imageValid, b.deploying, b.imageLen, b.started = true, false, int(m.Length), 0
		b.st.Deploys++
	case *wire.SetInput:
		switch {
		case !b.imageValid:
			ack.Status = wire.StatusNoImage
		case b.running:
			ack.Status = wire.StatusBusy
		case uint64(m.Offset)+uint64(len(m.Data)) > uint64(len(b.input)):
			ack.Status, ack.Detail = wire.StatusBadRange, uint32(len(b.input))
		default:
			copy(b.input[m.Offset:], m.Data)
		}
	case *wire.Start:
		if !b.imageValid {
			ack.Status = wire.StatusNoImage
			break
		}
		if b.started == m.Inference {
			break // started already (a retransmission): not again
		}
		b.progress, b.nvmValid, b.started = 0, true, m.Inference
		b.next, b.running = 0, true
		b.st.Starts++
		b.cond.Broadcast()
	case *wire.ReadOutput:
		return b.readOutput(m)
	case *wire.ReadNVM:
		return read(h.Type, b.nvm, m.Offset, m.Length)
	case *wire.ResetCounters:
		b.boots, b.st.RxErrors = 0, 0
	default:
		ack.Status = wire.StatusUnknownType // not implemented here
	}
	return ack
}

// refuseDeploy sets the answer of a DEPLOY command that the board refuses
// (its plan is in flash, an inference runs, end is past the image area) and
// reports whether it did.
func (b *Board) refuseDeploy(ack *wire.Ack, end uint64) bool {
	switch {
	case b.cfg.ReadOnlyImage:
		ack.Status, ack.Detail = wire.StatusFailed, 1
	case b.running:
		ack.Status = wire.StatusBusy
	case end > uint64(len(b.image)):
		ack.Status, ack.Detail = wire.StatusBadRange, uint32(len(b.image))
	default:
		return false
	}
	return true
}

func (b *Board) identity() *wire.Identity {
	id := &wire.Identity{Firmware: 0x00010000, NVMBytes: uint32(len(b.nvm)), ImageBytes: uint32(len(b.image)),
		Boots: b.boots, RxErrors: uint16(min(b.st.RxErrors, 0xFFFF)), Window: historyLen / 2, Name: b.cfg.Name}
	if b.imageValid {
		id.Flags = wire.IdentityImageValid
	}
	return id
}

// readOutput reads the output tensor, which a board without a valid image
// does not have.
func (b *Board) readOutput(m *wire.ReadOutput) wire.Message {
	var out []byte
	if b.imageValid {
		out = b.output
	}
	return read(wire.TypeReadOutput, out, m.Offset, m.Length)
}

// read answers a read of n bytes at off of src: DATA, or BAD_RANGE with the
// region's size.
func read(cmd wire.Type, src []byte, off uint32, n uint16) wire.Message {
	if uint64(off)+uint64(n) > uint64(len(src)) {
		return &wire.Ack{Status: wire.StatusBadRange, Cmd: cmd, Detail: uint32(len(src))}
	}
	return &wire.Data{Offset: off, Data: bytes.Clone(src[off : off+uint32(n)])}
}
