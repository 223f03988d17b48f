// Package serialboard is the host's driver of a board that runs the wire
// firmware (firmware/PROTOCOL.md), reached over a serial line
// (harness/link): the emulated STM32 in QEMU through its pseudo-terminal and a
// real MSP430FR5994 or STM32 through a USB adapter alike. It runs inferences
// (SET_INPUT, START, the board's events until RESULT, READ_OUTPUT), reports
// every board event to an observer (the per-cycle log), and treats a silent
// board as a hang: it asks the power strategy to power-cycle it and goes on.
//
// The driver does not decide when the board has power: a Power strategy
// does (boards/emulated runs the power system model and drives QEMU; a bench
// drives a supply). That split follows labgrid: the resource (a port), the
// driver (this package, over harness/link), the strategy (Power).
package serialboard

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/crc32"
	"strings"
	"sync"
	"time"

	"github.com/batteryless/harness/harness/link"
	"github.com/batteryless/harness/harness/wire"
)

// Power is what brings the board to a powered state. Implementations:
// Bench (always powered) and the emulated board's power model.
type Power interface {
	// Hold returns once the board is powered and keeps it so, with the
	// power model still, until Release: the host's own I/O (writing an
	// input, reading an output) is set-up and measurement, not the board's
	// work, and must not cost it energy.
	Hold(ctx context.Context) error
	Release()
	// Cycle cuts the board's power and restores it (the cure for a hang).
	Cycle(ctx context.Context) error
	// On reports whether the board is powered now.
	On() bool
	// Now is the time of the run's clock in seconds (simulated time under
	// a power model, wall time on a bench).
	Now() float64
}

// StartNotifier is implemented by a Power that wants to know the instant
// the board began an inference (START answered, before Release): a power
// model that charges the board by its tasks starts the first one then.
type StartNotifier interface {
	Started(inference uint32)
}

// Bench is a board on steady bench power. Reset, if set, resets the board
// (a reset pin, QEMU's system_reset) for Cycle.
type Bench struct {
	Reset func(ctx context.Context) error
	t0    time.Time
}

// Hold implements Power: a bench board is always powered.
func (b *Bench) Hold(context.Context) error { return nil }

// Release implements Power.
func (b *Bench) Release() {}

// Cycle implements Power with Reset.
func (b *Bench) Cycle(ctx context.Context) error {
	if b.Reset == nil {
		return errors.New("serialboard: bench power cannot cycle this board (no reset)")
	}
	return b.Reset(ctx)
}

// On implements Power.
func (b *Bench) On() bool { return true }

// Now implements Power: wall seconds since the first call.
func (b *Bench) Now() float64 {
	if b.t0.IsZero() {
		b.t0 = time.Now()
	}
	return time.Since(b.t0).Seconds()
}

// Config describes the deployed plan and the driver's patience.
type Config struct {
	// Tasks is the number of tasks of the deployed plan: a BOOT that says
	// the plan is done (resume = Tasks, not running) ends an inference
	// whose RESULT frame was lost.
	Tasks int
	// OutputBytes is the output tensor's size.
	OutputBytes int
	// HangTimeout: no board event for this long (wall) while the board is
	// powered and running, and the port is up, is a hang; default 5 s.
	HangTimeout time.Duration
	// MaxHangs: this many hangs in a row, with no board event between them,
	// fail the run with ErrBoardDead; default 5.
	MaxHangs int
	// PortTimeout: a port lost for this long (wall) fails the run; default
	// 10 s (the link reopens the port every 200 ms until then).
	PortTimeout time.Duration
	// Logf, if set, receives a line per board event and per decision.
	Logf func(format string, args ...any)
}

// Board drives one board over a link.
type Board struct {
	l   *link.Link
	cfg Config
	id  *wire.Identity
}

// New returns the driver of the board at the end of l.
func New(l *link.Link, cfg Config) *Board {
	if cfg.HangTimeout <= 0 {
		cfg.HangTimeout = 5 * time.Second
	}
	if cfg.MaxHangs <= 0 {
		cfg.MaxHangs = 5
	}
	if cfg.PortTimeout <= 0 {
		cfg.PortTimeout = 10 * time.Second
	}
	return &Board{l: l, cfg: cfg}
}

// Link returns the board's link.
func (b *Board) Link() *link.Link { return b.l }

func (b *Board) logf(format string, args ...any) {
	if b.cfg.Logf != nil {
		b.cfg.Logf(format, args...)
	}
}

// Hello starts a session (the board forgets its command history) and
// returns the board's identity.
func (b *Board) Hello(ctx context.Context) (*wire.Identity, error) {
	id, err := b.l.Hello(ctx)
	if err != nil {
		return nil, fmt.Errorf("serialboard: HELLO: %w", err)
	}
	b.id = id
	return id, nil
}

// TaskRun is one TASK_DONE: a task of the plan and the board cycles it took.
type TaskRun struct {
	Task   uint32    `json:"task"`
	Cycles uint32    `json:"cycles"`
	At     time.Time `json:"-"` // when its TASK_DONE arrived
}

// Inference is what one inference did on the board.
type Inference struct {
	Number uint32 `json:"number"`
	Output []byte `json:"-"`
	// Tasks is every TASK_DONE in arrival order, re-executions included.
	Tasks       []TaskRun `json:"-"`
	Reexecuted  int       `json:"reexecuted_tasks"` // TASK_DONEs of a task already done in this inference
	Commits     int       `json:"commits"`
	Boots       int       `json:"boots"`
	Hangs       int       `json:"hangs"`
	EventsLost  int       `json:"events_lost"`
	ResultLost  bool      `json:"result_lost"` // completion seen from a BOOT, not a RESULT
	Start, End  float64   `json:"-"`           // Power.Now when START is sent and at the result
	CRCMismatch bool      `json:"-"`           // the output read differed from RESULT's CRC (read again)
	ResultAt    time.Time `json:"-"`           // when RESULT arrived (zero if it was lost)
}

// Infer runs inference n on input: it writes the input and starts the
// inference while Power holds the board (set-up), then follows its events
// until RESULT (the Power strategy may cut power any number of times in
// between), and reads the output while Power holds it again. Every link
// event goes to observe (if set) as it arrives. A board silent for
// HangTimeout while powered is power-cycled through Power.Cycle and the run
// goes on. Inference numbers must differ from the previous one's (the
// board does not start an inference whose number it started last).
func (b *Board) Infer(ctx context.Context, n uint32, input []byte, pw Power, observe func(link.Event)) (*Inference, error) {
	inf := &Inference{Number: n}
	// Nothing Infer starts outlives it: when it returns (a result, a
	// failure, its context's end) its I/O is cancelled and waited for, so
	// that its Power holds are released and no command of its own is left
	// holding the link.
	ctx, cancel := context.WithCancel(ctx)
	var inflight sync.WaitGroup
	defer func() {
		cancel()
		inflight.Wait()
	}()
	type ioDone struct {
		out []byte
		err error
		at  float64 // Power.Now when START was sent
	}
	// The host's I/O runs beside the event loop, which must keep reading
	// events (the link drops them when nobody does).
	setup := make(chan ioDone, 1)
	inflight.Add(1)
	go func() {
		defer inflight.Done()
		if err := pw.Hold(ctx); err != nil {
			setup <- ioDone{err: err}
			return
		}
		defer pw.Release()
		t0 := time.Now()
		if len(input) > 0 {
			if err := b.l.SetInput(ctx, input); err != nil {
				setup <- ioDone{err: fmt.Errorf("SET_INPUT: %w", err)}
				return
			}
		}
		t1 := time.Now()
		// The inference starts when the board gets START, which may be
		// well before its answer does (an answer lost and retransmitted:
		// RESULT can even come first). Under a power model the clock
		// stands still while held, so before START is the same time.
		if sn, ok := pw.(StartNotifier); ok {
			sn.Started(n)
		}
		at := pw.Now()
		if err := b.l.Start(ctx, n); err != nil {
			setup <- ioDone{err: fmt.Errorf("START: %w", err)}
			return
		}
		b.logf("inference %d: input written in %v, START answered in %v", n, t1.Sub(t0).Round(time.Millisecond), time.Since(t1).Round(time.Millisecond))
		setup <- ioDone{at: at}
	}()
	var readout chan ioDone
	readOutput := func() {
		readout = make(chan ioDone, 1)
		inflight.Add(1)
		go func() {
			defer inflight.Done()
			if err := pw.Hold(ctx); err != nil {
				readout <- ioDone{err: err}
				return
			}
			defer pw.Release()
			out, err := b.l.ReadOutput(ctx, 0, b.cfg.OutputBytes)
			readout <- ioDone{out: out, err: err}
		}()
	}

	ses := &Session{b: b, inf: inf, done: make(map[uint32]bool)}
	hangsInRow := 0
	lastEvent := time.Now()
	var portLost time.Time
	tick := time.NewTicker(max(b.cfg.HangTimeout/20, 5*time.Millisecond))
	defer tick.Stop()
	reading := false
	finish := func() {
		if !reading {
			reading = true
			inf.End = pw.Now()
			readOutput()
		}
	}
	for {
		select {
		case <-ctx.Done():
			return inf, fmt.Errorf("serialboard: inference %d: %w", n, ctx.Err())
		case r := <-setup:
			if r.err != nil {
				return inf, fmt.Errorf("serialboard: inference %d: %w", n, r.err)
			}
			ses.started = true
			inf.Start = r.at
			lastEvent = time.Now()
			b.logf("inference %d started", n)
		case r := <-readout:
			if r.err != nil {
				return inf, fmt.Errorf("serialboard: inference %d: READ_OUTPUT: %w", n, r.err)
			}
			if ses.haveCRC && crc32.ChecksumIEEE(r.out) != ses.resultCRC && !inf.CRCMismatch {
				// A corrupted read cannot pass the frame CRC, so this is the
				// board's output changing under us: read once more, and let
				// the caller's verification judge what comes back.
				inf.CRCMismatch = true
				b.logf("inference %d: output CRC %08x, RESULT said %08x: reading again", n, crc32.ChecksumIEEE(r.out), ses.resultCRC)
				readOutput()
				continue
			}
			inf.Output = r.out
			return inf, nil
		case ev, ok := <-b.l.Events():
			if !ok {
				return inf, fmt.Errorf("serialboard: inference %d: link closed", n)
			}
			if observe != nil {
				observe(ev)
			}
			lastEvent = time.Now()
			switch ev.Kind {
			case link.PortLost:
				portLost = time.Now()
				b.logf("port lost: %v", ev.Err)
				continue
			case link.PortBack:
				portLost = time.Time{}
				b.logf("port back")
				continue
			}
			hangsInRow = 0
			u, err := ses.Handle(ev)
			if err != nil {
				return inf, err
			}
			if u.Done {
				finish()
			}
		case <-tick.C:
			if !portLost.IsZero() && time.Since(portLost) > b.cfg.PortTimeout {
				return inf, fmt.Errorf("serialboard: inference %d: port lost for %v: %w", n, b.cfg.PortTimeout, ErrPortLost)
			}
			// Silence while the port is lost is the host's: the board's
			// events are lost on the way, not unsent. (PortBack restarts
			// the hang timer like any event.)
			if ses.started && !ses.finished && portLost.IsZero() && pw.On() && time.Since(lastEvent) > b.cfg.HangTimeout {
				if hangsInRow >= b.cfg.MaxHangs {
					return inf, fmt.Errorf("serialboard: inference %d: %d power cycles in a row brought no event from the board: %w", n, hangsInRow, ErrBoardDead)
				}
				hangsInRow++
				inf.Hangs++
				b.logf("inference %d: no event for %v while powered: a hang, power-cycling", n, b.cfg.HangTimeout)
				if err := pw.Cycle(ctx); err != nil {
					return inf, fmt.Errorf("serialboard: inference %d: power-cycling a hung board: %w", n, err)
				}
				lastEvent = time.Now()
			}
		}
	}
}

// Session is one inference's view of the board's events: what Infer
// follows while a Power strategy cuts power behind its back, and what a
// caller that steps the board itself (the emulated board under the replay
// engine) feeds event by event. Begin starts one; Handle digests each
// board event; Output reads the result.
type Session struct {
	b          *Board
	inf        *Inference
	started    bool
	finished   bool
	resultCRC  uint32
	haveCRC    bool
	done       map[uint32]bool
	lastCommit int64
}

// Update is what one board event changed in a Session.
type Update struct {
	// Task is the task a TASK_DONE reported (with its Cycles), -1 if none.
	Task   int
	Cycles uint32
	// Committed: a COMMIT moved the progress word to Progress.
	Committed bool
	Progress  int64
	// Boot is the BOOT the event carried, if it was one.
	Boot *wire.Boot
	// Done: the inference is over (its RESULT, or a BOOT saying the plan is
	// done when RESULT was lost): read the output.
	Done bool
}

// Begin writes input (when not empty) and starts inference n: the board must
// be powered until START is answered. The inference's events are then
// Handle's.
func (b *Board) Begin(ctx context.Context, n uint32, input []byte) (*Session, error) {
	if len(input) > 0 {
		if err := b.l.SetInput(ctx, input); err != nil {
			return nil, fmt.Errorf("serialboard: inference %d: SET_INPUT: %w", n, err)
		}
	}
	if err := b.l.Start(ctx, n); err != nil {
		return nil, fmt.Errorf("serialboard: inference %d: START: %w", n, err)
	}
	return &Session{b: b, inf: &Inference{Number: n}, started: true, done: make(map[uint32]bool)}, nil
}

// Inference is what the session saw so far.
func (s *Session) Inference() *Inference { return s.inf }

// Progress is the highest progress word a COMMIT event reported.
func (s *Session) Progress() int64 { return s.lastCommit }

// Finished reports whether the inference is over (see Update.Done).
func (s *Session) Finished() bool { return s.finished }

// Handle digests one link event. A BOOT that resumes before the last
// reported commit is a *ProgressLostError: the board's output cannot be
// trusted from here.
func (s *Session) Handle(ev link.Event) (Update, error) {
	u := Update{Task: -1}
	if ev.Kind != link.BoardEvent {
		return u, nil
	}
	b, inf, n := s.b, s.inf, s.inf.Number
	inf.EventsLost += ev.Missed
	switch e := ev.Msg.(type) {
	case *wire.Boot:
		inf.Boots++
		u.Boot = e
		b.logf("BOOT boots=%d resume=%d flags=%#x cycles=%d", e.Boots, e.Resume, e.Flags, e.Cycles)
		// What the board committed must survive the power failure: it
		// resumes at its last reported commit or later (a later COMMIT
		// event may have been cut), never before it, and never past the
		// plan's end.
		if s.started && !s.finished && (int64(e.Resume) < s.lastCommit || (b.cfg.Tasks > 0 && int64(e.Resume) > int64(b.cfg.Tasks))) {
			return u, &ProgressLostError{Inference: n, Committed: s.lastCommit, Resume: e.Resume}
		}
		// RESULT lost (cut by a brown-out): the board says the plan is
		// done and nothing runs. The output read next is checked like any
		// other.
		if s.started && !s.finished && e.Flags&wire.BootNVMValid != 0 && e.Flags&wire.BootRunning == 0 &&
			b.cfg.Tasks > 0 && int(e.Resume) >= b.cfg.Tasks && len(inf.Tasks) > 0 {
			inf.ResultLost = true
			b.logf("inference %d: done (BOOT), its RESULT was lost", n)
			u.Done = true
		}
	case *wire.TaskDone:
		// The board answers START before it sends the events START causes,
		// and runs nothing before: every TASK_DONE until the result is this
		// inference's, even one that overtakes the report of START's answer.
		if s.finished {
			break
		}
		inf.Tasks = append(inf.Tasks, TaskRun{Task: e.Task, Cycles: e.Cycles, At: ev.Time})
		if s.done[e.Task] {
			inf.Reexecuted++
		}
		s.done[e.Task] = true
		u.Task, u.Cycles = int(e.Task), e.Cycles
	case *wire.Commit:
		if !s.finished {
			inf.Commits++
			s.lastCommit = max(s.lastCommit, int64(e.Progress))
			u.Committed, u.Progress = true, int64(e.Progress)
		}
	case *wire.Result:
		if e.Inference == n && !s.finished {
			s.resultCRC, s.haveCRC = e.CRC, true
			inf.ResultAt = ev.Time
			if int(e.Length) != b.cfg.OutputBytes && b.cfg.OutputBytes > 0 {
				return u, fmt.Errorf("serialboard: inference %d: RESULT says %d output bytes, the plan %d", n, e.Length, b.cfg.OutputBytes)
			}
			u.Done = true
		}
	case *wire.Log:
		b.logf("board log %d: %s", e.Level, e.Text)
	}
	if u.Done {
		s.finished = true
	}
	return u, nil
}

// Output reads the finished inference's output (the board must be
// powered), once more if it differs from the CRC its RESULT gave.
func (s *Session) Output(ctx context.Context) ([]byte, error) {
	out, err := s.b.l.ReadOutput(ctx, 0, s.b.cfg.OutputBytes)
	if err != nil {
		return nil, fmt.Errorf("serialboard: inference %d: READ_OUTPUT: %w", s.inf.Number, err)
	}
	if s.haveCRC && crc32.ChecksumIEEE(out) != s.resultCRC {
		s.inf.CRCMismatch = true
		s.b.logf("inference %d: output CRC %08x, RESULT said %08x: reading again", s.inf.Number, crc32.ChecksumIEEE(out), s.resultCRC)
		if out, err = s.b.l.ReadOutput(ctx, 0, s.b.cfg.OutputBytes); err != nil {
			return nil, fmt.Errorf("serialboard: inference %d: READ_OUTPUT: %w", s.inf.Number, err)
		}
	}
	s.inf.Output = out
	return out, nil
}

// ProgressLostError: after a power failure the board resumed before what it
// had reported committed (or at a progress word past the plan's end): its
// progress did not survive, so its output cannot be trusted. Is
// ErrProgressLost.
type ProgressLostError struct {
	Inference uint32
	Committed int64  // the highest progress a COMMIT event reported
	Resume    uint32 // what the BOOT after the failure says
}

func (e *ProgressLostError) Error() string {
	return fmt.Sprintf("serialboard: inference %d: the board lost committed progress across a power failure: it reported progress %d committed, then booted resuming at %d (%#x): its progress word does not survive a power failure", e.Inference, e.Committed, e.Resume, e.Resume)
}

// Is makes errors.Is(err, ErrProgressLost) true.
func (e *ProgressLostError) Is(target error) bool { return target == ErrProgressLost }

// ErrProgressLost is what a ProgressLostError is.
var ErrProgressLost = errors.New("committed progress lost across a power failure")

// ErrBoardDead is wrapped by the error of a run whose board stayed silent
// through Config.MaxHangs power cycles in a row.
var ErrBoardDead = errors.New("the board does not answer power cycles")

// ErrPortLost is wrapped by the error of a run whose serial port stayed
// lost for longer than Config.PortTimeout.
var ErrPortLost = errors.New("serial port lost")

// Verify reports whether out equals want, and a one-line description of the
// first difference.
func Verify(out, want []byte) (bool, string) {
	if bytes.Equal(out, want) {
		return true, ""
	}
	if len(out) != len(want) {
		return false, fmt.Sprintf("output is %d bytes, want %d", len(out), len(want))
	}
	for i := range out {
		if out[i] != want[i] {
			return false, fmt.Sprintf("output byte %d is %d, want %d (output %x, want %x)", i, int8(out[i]), int8(want[i]), out, want)
		}
	}
	return true, ""
}

// Identity is the board's identity as its last HELLO gave it (Hello, or
// Deploy, which says HELLO before and after); nil before the first.
func (b *Board) Identity() *wire.Identity { return b.id }

// Deploy writes a plan image (harness/plan/FORMAT.md) into the board's image
// area: HELLO (the identity gives the area's capacity), DEPLOY_CHUNKs through
// the link's window, DEPLOY_COMMIT with the image's length and CRC-32, and
// HELLO again, which must say the image is valid. An image larger than the
// capacity is refused before anything is sent. A board whose plan is linked
// into its flash with the firmware (the STM32 and MSP430 ports) answers
// DEPLOY with FAILED, detail 1: the error says how to flash one instead.
// The board starts a new series of inference numbers with a new image (its
// started inference is 0 again).
func (b *Board) Deploy(ctx context.Context, image []byte) error {
	if len(image) == 0 {
		return errors.New("serialboard: deploy: empty image")
	}
	id, err := b.Hello(ctx)
	if err != nil {
		return err
	}
	name := boardName(id)
	if uint64(len(image)) > uint64(id.ImageBytes) {
		return fmt.Errorf("serialboard: deploy: the image is %d bytes, larger than the image area of %s, %d bytes (its IDENTITY)", len(image), name, id.ImageBytes)
	}
	t0 := time.Now()
	if err := b.l.Deploy(ctx, image); err != nil {
		return deployError(name, image, err)
	}
	b.logf("deployed %d bytes to %s in %v", len(image), name, time.Since(t0).Round(time.Millisecond))
	if id, err = b.Hello(ctx); err != nil {
		return fmt.Errorf("serialboard: after the deploy: %w", err)
	}
	if id.Flags&wire.IdentityImageValid == 0 {
		return fmt.Errorf("serialboard: deploy: %s acknowledged DEPLOY_COMMIT but its IDENTITY says no valid image", name)
	}
	return nil
}

// boardName names a board in messages by its identity.
func boardName(id *wire.Identity) string {
	if id.Name == "" {
		return "the board"
	}
	return "board " + id.Name
}

// deployError explains a failed link.Deploy.
func deployError(name string, image []byte, err error) error {
	var ce *link.CommandError
	if !errors.As(err, &ce) || ce.Err != nil {
		return fmt.Errorf("serialboard: deploy of %d bytes to %s: %w", len(image), name, err)
	}
	switch ce.Status {
	case wire.StatusFailed:
		switch ce.Detail {
		case 1:
			return fmt.Errorf("serialboard: %s has no writable image area (%v answered FAILED, detail 1): its plan is linked into its flash with the firmware and cannot be deployed over the line; "+
				"to run this plan, write it with `harness schedule --image /path/plan.bin`, %s: %w", name, ce.Cmd, flashHowTo(name), err)
		case 2:
			return fmt.Errorf("serialboard: %s's runtime refused the image (DEPLOY_COMMIT answered FAILED, detail 2): the image arrived intact but is not one this firmware runs (harness/plan/FORMAT.md version, NVM word size, or a task region larger than its SRAM buffer): %w", name, err)
		}
	case wire.StatusBadCRC:
		return fmt.Errorf("serialboard: deploy: the image's CRC-32 is %#08x, %s computed %#08x over the %d bytes it holds: bytes changed on the way or in its image area: %w",
			crc32.ChecksumIEEE(image), name, ce.Detail, len(image), err)
	case wire.StatusBadRange:
		return fmt.Errorf("serialboard: deploy: the image is %d bytes, %s's image area %d (%v answered BAD_RANGE): %w", len(image), name, ce.Detail, ce.Cmd, err)
	case wire.StatusBusy:
		return fmt.Errorf("serialboard: deploy: %s is running an inference (%v answered BUSY); wait for its result: %w", name, ce.Cmd, err)
	}
	return fmt.Errorf("serialboard: deploy of %d bytes to %s: %w", len(image), name, err)
}

// flashHowTo says how a plan gets into the flash of a board by its name.
func flashHowTo(name string) string {
	const (
		stm32  = "link it into the STM32 firmware with `make -C firmware stm32f4 STM32_IMAGE=/path/plan.bin` and flash it with `scripts/flash-stm32.sh firmware/build/stm32f4/firmware.elf`"
		msp430 = "link it into the MSP430 firmware with `make -C firmware msp430 MSP430_IMAGE=/path/plan.bin` and flash it with `scripts/flash-msp430.sh firmware/build/msp430fr5994/firmware.elf`"
	)
	switch n := strings.ToLower(name); {
	case strings.Contains(n, "stm32"):
		return stm32
	case strings.Contains(n, "msp430"):
		return msp430
	}
	return stm32 + "; on an MSP430FR5994, " + msp430
}
