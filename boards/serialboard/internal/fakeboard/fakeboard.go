// Package fakeboard is a board for the tests and examples of serialboard: it
// speaks the board side of the wire protocol (firmware/PROTOCOL.md) the way
// the firmware does (firmware/ports/common/app.c), with faults a test
// switches on.
//
// The board has a plan of Tasks tasks with a committed image. Its "NVM"
// (fields that survive a power cycle) holds the input tensor, the output
// tensor, the progress word, the number of the inference it started and the
// boot count; its "SRAM" (lost at every power cycle) holds the task it runs
// next, whether it runs, the event sequence and whether it hangs. START
// resets the progress word and runs the tasks one by one on a goroutine of
// its own: each task does its work (TaskTime of wall time), commits (every
// CommitEvery tasks and after the last: the progress word is written before
// the events, as the runtime does), then sends TASK_DONE and COMMIT; after
// the last task RESULT with the CRC-32 of the output. A power cycle (a
// test's PowerCycle, or a BrownOut fault) loses the SRAM, sends a 0x00 and
// BOOT (event sequence 0, resume = the progress word, the flags of
// PROTOCOL.md) and resumes the inference at the progress word.
//
// DEPLOY_CHUNK and DEPLOY_COMMIT write and check its image area (Image) as
// the host board program does, or are refused as the ports do
// (ReadOnlyImage); what is deployed does not change what the board computes.
//
// No de-duplication history is needed for the commands it knows: SET_INPUT
// and READ_OUTPUT may run twice, and START is de-duplicated by its inference
// number in NVM (PROTOCOL.md, section 4).
package fakeboard

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/batteryless/harness/harness/wire"
	"github.com/creack/pty"
	"golang.org/x/term"
)

// Fault is what happens to the board at a point a test chooses.
type Fault int

// Faults.
const (
	None Fault = iota
	// Cut: only the first half of the frame goes out (line noise); the
	// board goes on as if it had been sent.
	Cut
	// BrownOut: the power fails. On a frame: halfway through it (the frame
	// is cut); in a task: before the task commits (its work is lost). The
	// board then boots (0x00, BOOT) and resumes from its NVM.
	BrownOut
	// Hang: the board stops before the frame (or before the task commits)
	// and stays silent while powered, until a power cycle.
	Hang
	// Die: like Hang, but power cycles do not revive it: it never sends or
	// answers anything again.
	Die
)

// Config of a fake board. Zero fields take the defaults. The hooks are
// called with the board's lock held (they must not call the board); they
// decide, they do not act.
type Config struct {
	Tasks       int           // tasks of the plan; default 8
	CommitEvery int           // the progress word is written after every CommitEvery tasks and after the last; default 1
	InputBytes  int           // default 64
	OutputBytes int           // default 32
	TaskTime    time.Duration // wall time of one task's work; default 2 ms
	Name        string        // IDENTITY's name; default "fakeboard"
	ImageBytes  int           // the image area's capacity (IDENTITY); default 4096

	// ReadOnlyImage: the plan is linked into flash: DEPLOY_CHUNK and
	// DEPLOY_COMMIT answer FAILED, detail 1, as the ports do.
	ReadOnlyImage bool
	// ImageFault, if set, may change the image area before DEPLOY_COMMIT
	// checks its CRC (bytes that changed on the way or in the area).
	ImageFault func(area []byte)

	// OnFrame decides the fault of each frame the board is about to send
	// (answers and events; never BOOT).
	OnFrame func(m wire.Message) Fault
	// OnTask decides the fault of a task whose work is done, before it
	// commits and reports (None, BrownOut, Hang or Die).
	OnTask func(task uint32) Fault
	// Noise, if set, is written on the line before each frame the board
	// sends (before its leading 0x00): garbage, half frames.
	Noise func() []byte
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
	Boots     uint32 // boot count (NVM), including the first power-up
	Cycles    int    // power cycles (PowerCycle and BrownOut faults)
	Starts    int    // STARTs that started an inference
	Tasks     int    // tasks run to their end, re-executions included
	RxErrors  int    // frames dropped by the board's receiver
	Commands  int    // command frames executed or answered
	Progress  uint32 // the progress word
	Inference uint32 // the inference started last
	Deploys   int    // DEPLOY_COMMITs that made an image valid
}

// Board is a fake board. Serve it on a line (or Attach it to a
// pseudo-terminal); Close it at the end.
type Board struct {
	cfg  Config
	mu   sync.Mutex
	cond *sync.Cond

	// NVM
	input, output []byte
	progress      uint32
	started       uint32
	nvmValid      bool
	boots         uint32
	image         []byte // the image area
	imageLen      int    // the committed image's length
	imageValid    bool
	deploying     bool // a DEPLOY_CHUNK came since the last commit

	// SRAM
	next    uint32 // the task the board runs next
	running bool
	evSeq   uint16
	hung    bool
	gen     int // power cycles so far: work begun before one is lost

	dead   bool // survives power cycles: Die
	closed bool
	w      io.Writer // the line, nil while unplugged
	st     Stats
	done   chan struct{}
}

// New powers up a board with a committed image and no inference started,
// and starts its task goroutine. (Its first BOOT is not sent: it has no
// line yet.)
func New(cfg Config) *Board {
	if cfg.Tasks <= 0 {
		cfg.Tasks = 8
	}
	if cfg.CommitEvery <= 0 {
		cfg.CommitEvery = 1
	}
	if cfg.InputBytes <= 0 {
		cfg.InputBytes = 64
	}
	if cfg.OutputBytes <= 0 {
		cfg.OutputBytes = 32
	}
	if cfg.TaskTime <= 0 {
		cfg.TaskTime = 2 * time.Millisecond
	}
	if cfg.Name == "" {
		cfg.Name = "fakeboard"
	}
	if cfg.ImageBytes <= 0 {
		cfg.ImageBytes = 4096
	}
	b := &Board{
		cfg:    cfg,
		input:  make([]byte, cfg.InputBytes),
		output: make([]byte, cfg.OutputBytes),
		boots:  1,
		done:   make(chan struct{}),
		image:  make([]byte, cfg.ImageBytes),
		// The image a board comes with (flashed, or deployed before).
		imageValid: true,
	}
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

// PowerCycle cuts the board's power and restores it: what a test's
// serialboard.Power does in Cycle.
func (b *Board) PowerCycle() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.reboot()
}

// Serve reads commands from the line and answers them on it until reading
// fails; the board's events go to the line it serves last.
func (b *Board) Serve(line io.ReadWriter) error {
	b.mu.Lock()
	b.w = line
	b.mu.Unlock()
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
		b.command(f)
	}
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
		f := None
		if b.cfg.OnTask != nil {
			f = b.cfg.OnTask(task)
		}
		switch f {
		case BrownOut:
			b.reboot()
			continue
		case Hang:
			b.hung = true
			continue
		case Die:
			b.dead = true
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

// reboot is a power failure and the boot after it.
func (b *Board) reboot() {
	b.gen++
	b.st.Cycles++
	b.hung, b.running, b.evSeq = false, false, 0
	if b.dead {
		return
	}
	b.boots++
	if b.cfg.NVMFault != nil {
		b.progress = b.cfg.NVMFault(b.progress)
	}
	b.next = b.progress
	b.running = b.nvmValid && int(b.progress) < b.cfg.Tasks
	flags := wire.BootImageValid
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
	f := None
	if m.Type() != wire.TypeBoot && b.cfg.OnFrame != nil {
		f = b.cfg.OnFrame(m)
	}
	switch f {
	case Hang:
		b.hung = true
		return false
	case Die:
		b.dead = true
		return false
	}
	frame, err := wire.Encode(seq, m)
	if err != nil {
		panic(fmt.Sprintf("fakeboard: %v", err))
	}
	out := append([]byte{0}, frame...)
	if f == Cut || f == BrownOut {
		out = out[:len(out)/2]
	}
	if b.w != nil {
		if b.cfg.Noise != nil {
			b.w.Write(b.cfg.Noise())
		}
		b.w.Write(out) // a write to an unplugged line fails: the frame is lost
	}
	if f == BrownOut {
		b.reboot()
		return false
	}
	return true
}

// command executes one command frame and answers it.
func (b *Board) command(f []byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.hung || b.dead {
		return
	}
	h, m, err := wire.Unmarshal(f)
	if !h.Type.IsCommand() {
		return // responses, events: never answered
	}
	b.st.Commands++
	if err != nil {
		var we *wire.Error
		errors.As(err, &we)
		switch {
		case we != nil && we.Kind == wire.KindVersion:
			b.send(h.Seq, &wire.Ack{Status: wire.StatusUnsupportedVersion, Cmd: h.Type, Detail: wire.Version})
		case we != nil && we.Kind == wire.KindType:
			b.send(h.Seq, &wire.Ack{Status: wire.StatusUnknownType, Cmd: h.Type})
		default:
			b.send(h.Seq, &wire.Ack{Status: wire.StatusBadLength, Cmd: h.Type})
		}
		return
	}
	ack := &wire.Ack{Cmd: h.Type}
	var ans wire.Message = ack
	switch m := m.(type) {
	case *wire.Hello:
		id := &wire.Identity{Firmware: 0x00010000, NVMBytes: 4096, ImageBytes: uint32(b.cfg.ImageBytes), Boots: b.boots,
			RxErrors: uint16(min(b.st.RxErrors, 0xFFFF)), Window: 8, Name: b.cfg.Name}
		if b.imageValid {
			id.Flags = wire.IdentityImageValid
		}
		ans = id
	case *wire.DeployChunk:
		switch {
		case b.cfg.ReadOnlyImage:
			ack.Status, ack.Detail = wire.StatusFailed, 1
		case b.running:
			ack.Status = wire.StatusBusy
		case int(m.Offset)+len(m.Data) > len(b.image):
			ack.Status, ack.Detail = wire.StatusBadRange, uint32(len(b.image))
		default:
			if !b.deploying {
				b.imageValid, b.deploying = false, true
			}
			copy(b.image[m.Offset:], m.Data)
		}
	case *wire.DeployCommit:
		switch {
		case b.cfg.ReadOnlyImage:
			ack.Status, ack.Detail = wire.StatusFailed, 1
		case b.running:
			ack.Status = wire.StatusBusy
		case int(m.Length) > len(b.image):
			ack.Status, ack.Detail = wire.StatusBadRange, uint32(len(b.image))
		default:
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
		}
	case *wire.SetInput:
		switch {
		case b.running:
			ack.Status = wire.StatusBusy
		case int(m.Offset)+len(m.Data) > len(b.input):
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
		// The answer goes out before the task goroutine, waiting for the
		// lock, sends the first event.
		b.cond.Broadcast()
	case *wire.ReadOutput:
		if uint64(m.Offset)+uint64(m.Length) > uint64(len(b.output)) {
			ack.Status, ack.Detail = wire.StatusBadRange, uint32(len(b.output))
			break
		}
		ans = &wire.Data{Offset: m.Offset, Data: bytes.Clone(b.output[m.Offset : m.Offset+uint32(m.Length)])}
	case *wire.ResetCounters:
		b.boots, b.st.RxErrors = 0, 0
	default:
		ack.Status = wire.StatusUnknownType // not implemented here
	}
	b.send(h.Seq, ans)
}

// Port is a pseudo-terminal pair with a board on its master side: the
// link opens Path as a serial port.
type Port struct {
	Path          string // the slave's path, or the symlink to it
	link          string
	master, slave *os.File
	done          chan struct{}
	once          sync.Once
}

// Attach opens a pseudo-terminal pair in raw mode and serves b on its
// master side. If at is not empty, Path is a symlink at that path to the
// slave (a port that can vanish and come back at the same path: a USB
// adapter unplugged and plugged in again).
func Attach(b *Board, at string) (*Port, error) {
	m, s, err := pty.Open()
	if err != nil {
		return nil, fmt.Errorf("fakeboard: no pseudo-terminal: %w", err)
	}
	rc, err := s.SyscallConn()
	if err == nil {
		var rawErr error
		if err = rc.Control(func(fd uintptr) { _, rawErr = term.MakeRaw(int(fd)) }); err == nil {
			err = rawErr
		}
	}
	if err != nil {
		m.Close()
		s.Close()
		return nil, fmt.Errorf("fakeboard: raw mode: %w", err)
	}
	p := &Port{Path: s.Name(), master: m, slave: s, done: make(chan struct{})}
	if at != "" {
		if err := os.Symlink(s.Name(), at); err != nil {
			m.Close()
			s.Close()
			return nil, err
		}
		p.Path, p.link = at, at
	}
	go func() {
		defer close(p.done)
		b.Serve(m)
	}()
	return p, nil
}

// LineNoise writes bytes on the line towards the board, as noise on the
// host's TX line would.
func (p *Port) LineNoise(garbage []byte) error {
	_, err := p.slave.Write(garbage)
	return err
}

// Close unplugs the port: both sides close and the symlink, if any, goes;
// it waits until the board no longer reads it.
func (p *Port) Close() error {
	p.once.Do(func() {
		// The master is not pollable: Close does not end a Read in
		// progress, it only makes the file close when that Read returns.
		// A byte through the slave ends it (0x00: an empty frame for the
		// board); then the slave's reader, the link, sees the hang-up.
		p.master.Close()
		p.slave.Write([]byte{0})
		p.slave.Close()
		if p.link != "" {
			os.Remove(p.link)
		}
	})
	<-p.done
	return nil
}
