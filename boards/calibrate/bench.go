package calibrate

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/batteryless/harness/boards/qemu"
	"github.com/batteryless/harness/boards/serialboard"
	"github.com/batteryless/harness/harness/link"
	"github.com/batteryless/harness/harness/wire"
)

// TaskTime is one TASK_DONE event: a task's index in the plan and the
// board's cycles for it.
type TaskTime struct {
	Task   int
	Cycles uint32
}

// Measurement is what a board reports for one inference of a plan image.
type Measurement struct {
	Tasks  []TaskTime // in the order of the TASK_DONE events
	Output []byte     // the output tensor, read back with READ_OUTPUT
	// BootCycles is the cycles of the last BOOT before the inference (the
	// boot's cost, wire.Boot.Cycles); 0 when no BOOT was seen or the
	// firmware predates the field.
	BootCycles uint32
	Wall       time.Duration
}

// Bench runs plan images on a board, one inference each, and reports what
// the board measured.
type Bench interface {
	// Name says which board, for messages and profile sources.
	Name() string
	// Run runs one inference of the image's plan on its input.
	Run(ctx context.Context, img *Image) (*Measurement, error)
	// Parallel is how many Runs may go on at once.
	Parallel() int
}

// hangTimeout is how long a board on bench power may stay silent in an
// inference before it counts as hung: far more than any benchmark task
// takes (a task fits one power cycle of the profile; under QEMU a few
// milliseconds of wall time).
const hangTimeout = 30 * time.Second

// QEMU runs each image on a fresh QEMU netduinoplus2 (boards/qemu) with
// firmware-noplan.elf, the image put at the plan region by a -device loader
// (the STM32 port refuses DEPLOY: the guest cannot write flash), under
// -icount shift=qemu.BoardICountShift: cycle counts are the same on any
// host. Runs are independent, so several go on at once. The inference runs
// through boards/serialboard on bench power whose reset is QEMU's
// system_reset.
type QEMU struct {
	ELF     string // firmware-noplan.elf (make -C firmware stm32f4)
	Binary  string // default qemu-system-arm
	Jobs    int    // parallel QEMUs; default 4 (a run mostly waits: QEMU's pty takes about 1 s to pass the host's first bytes)
	Timeout time.Duration
	Stderr  io.Writer // QEMU's own output, if set
}

// Name implements Bench.
func (q *QEMU) Name() string { return "qemu-stm32" }

// Parallel implements Bench.
func (q *QEMU) Parallel() int {
	if q.Jobs <= 0 {
		return 4
	}
	return q.Jobs
}

// Run implements Bench.
func (q *QEMU) Run(ctx context.Context, img *Image) (m *Measurement, err error) {
	t0 := time.Now()
	timeout := q.Timeout
	if timeout <= 0 {
		timeout = 2 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	dir, err := os.MkdirTemp("", "ihcal")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	file := filepath.Join(dir, "plan.bin")
	if err := os.WriteFile(file, img.Bytes, 0o600); err != nil {
		return nil, err
	}
	mc, err := qemu.Start(ctx, qemu.Config{Binary: q.Binary, ELF: q.ELF, Loaders: []qemu.Loader{{File: file, Addr: qemu.PlanAddr}},
		ICountShift: qemu.BoardICountShift, Dir: dir, Stderr: q.Stderr})
	if err != nil {
		return nil, err
	}
	defer mc.Close()
	l, err := link.Open(ctx, link.Config{Path: mc.SerialPath()})
	if err != nil {
		return nil, err
	}
	defer l.Close()
	// The BOOT at QEMU's start may come before the pty is open: reset, so
	// that a BOOT (and its cycles) comes while the link listens. The boot
	// that comes first checks the image's CRC (the first boot of an image
	// does, once: a reset during the check at QEMU's start makes the next
	// boot check again); every power-up after it does not, and that is
	// the reboot a power cycle pays. So the measured boot is the one
	// after a second reset.
	var boot uint32
	for range 2 {
		if err := mc.SystemReset(ctx); err != nil {
			return nil, err
		}
		boot = waitBoot(ctx, l, 5*time.Second)
	}
	brd := newBoard(l, img)
	if _, err := brd.Hello(ctx); err != nil {
		return nil, err
	}
	hung := false
	pw := &serialboard.Bench{Reset: func(ctx context.Context) error {
		hung = true
		return mc.SystemReset(ctx)
	}}
	m, err = measure(ctx, brd, img, pw, &hung)
	if err != nil {
		if qerr := mc.Err(); qerr != nil {
			err = fmt.Errorf("%w (QEMU: %v)", err, qerr)
		}
		return nil, err
	}
	if boot != 0 {
		m.BootCycles = boot
	}
	m.Wall = time.Since(t0)
	return m, nil
}

// Serial runs images on a real board over its serial port: each image is
// deployed with DEPLOY_CHUNK and DEPLOY_COMMIT (serialboard.Board.Deploy),
// then run. One board, one run at a time. The firmware must have a
// writable image area: the MSP430 port has one (its FRAM PLAN region), the
// STM32 port refuses DEPLOY (firmware/ports/README.md), so with it Run
// fails at the first image, with an error that says how to flash a plan.
type Serial struct {
	name string
	path string
	l    *link.Link
}

// OpenSerial opens the link to a board (name: its --board, for messages)
// at path; cfg's other fields are passed to link.Open.
func OpenSerial(ctx context.Context, name string, cfg link.Config) (*Serial, error) {
	l, err := link.Open(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return &Serial{name: name, path: cfg.Path, l: l}, nil
}

// Name implements Bench.
func (s *Serial) Name() string { return s.name }

// Parallel implements Bench.
func (s *Serial) Parallel() int { return 1 }

// Close closes the link.
func (s *Serial) Close() error { return s.l.Close() }

// Run implements Bench.
func (s *Serial) Run(ctx context.Context, img *Image) (*Measurement, error) {
	t0 := time.Now()
	brd := newBoard(s.l, img)
	if err := brd.Deploy(ctx, img.Bytes); err != nil {
		return nil, fmt.Errorf("%s: %w", s.path, err)
	}
	m, err := measure(ctx, brd, img, &serialboard.Bench{}, nil)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", s.path, err)
	}
	m.Wall = time.Since(t0)
	return m, nil
}

// waitBoot waits for a BOOT event and returns its cycles (0 if none came).
func waitBoot(ctx context.Context, l *link.Link, within time.Duration) uint32 {
	t := time.NewTimer(within)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return 0
		case <-t.C:
			return 0
		case ev, ok := <-l.Events():
			if !ok {
				return 0
			}
			if b, isBoot := ev.Msg.(*wire.Boot); isBoot {
				return b.Cycles
			}
		}
	}
}

// newBoard is the driver of the board at the end of l for an image's plan.
func newBoard(l *link.Link, img *Image) *serialboard.Board {
	return serialboard.New(l, serialboard.Config{Tasks: len(img.Plan.Tasks), OutputBytes: len(img.Want), HangTimeout: hangTimeout, MaxHangs: 1})
}

// measure runs one inference of img on a board on steady bench power
// (serialboard.Board.Infer), numbered one more than the last the board
// started (NVM header bytes 12..15, harness/plan/FORMAT.md). A calibration
// needs every TASK_DONE of one clean run: a BOOT during it, an event lost,
// the port lost, an error the board logs or an output read back that
// differs from RESULT's CRC fail it. The cycles of a BOOT that came before
// (the board's start) are the measurement's BootCycles. hung, if set, is
// true once pw reset a hung board.
func measure(ctx context.Context, brd *serialboard.Board, img *Image, pw *serialboard.Bench, hung *bool) (*Measurement, error) {
	m := &Measurement{}
	l := brd.Link()
	hdr, err := l.ReadNVM(ctx, 12, 4)
	if err != nil {
		return nil, fmt.Errorf("READ_NVM: %w", err)
	}
	n := binary.LittleEndian.Uint32(hdr) + 1
	if n == 0 {
		n = 1
	}
	// Events before the inference: the board's start.
	for drained := false; !drained; {
		select {
		case ev, ok := <-l.Events():
			if !ok {
				return nil, errors.New("link closed")
			}
			if b, isBoot := ev.Msg.(*wire.Boot); isBoot {
				m.BootCycles = b.Cycles
			}
		default:
			drained = true
		}
	}
	// The observer runs on this goroutine, in Infer's event loop: it stops
	// the inference at the first event a calibration cannot take.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var failure error
	fail := func(err error) {
		if failure == nil {
			failure = err
			cancel()
		}
	}
	tasks := 0
	observe := func(ev link.Event) {
		switch ev.Kind {
		case link.PortLost:
			fail(fmt.Errorf("inference %d: serial port lost: %v", n, ev.Err))
			return
		case link.BoardEvent:
		default:
			return
		}
		if ev.Missed > 0 || ev.Rebooted {
			fail(fmt.Errorf("inference %d: %d events lost (rebooted: %v): a calibration needs every TASK_DONE", n, ev.Missed, ev.Rebooted))
			return
		}
		switch e := ev.Msg.(type) {
		case *wire.TaskDone:
			tasks++
		case *wire.Boot:
			if hung != nil && *hung {
				fail(fmt.Errorf("inference %d: the board hung after %d tasks (no event for %v) and was reset", n, tasks, hangTimeout))
				return
			}
			fail(fmt.Errorf("inference %d: the board rebooted after %d tasks (a calibration runs on steady power)", n, tasks))
		case *wire.Log:
			if e.Level == 0 {
				fail(fmt.Errorf("inference %d: the board reports an error: %s", n, e.Text))
			}
		}
	}
	inf, err := brd.Infer(ctx, n, img.Input, pw, observe)
	if failure != nil {
		return nil, failure
	}
	if err != nil {
		return nil, err
	}
	if inf.CRCMismatch {
		return nil, fmt.Errorf("inference %d: the output read back differs from RESULT's CRC-32", n)
	}
	for _, t := range inf.Tasks {
		m.Tasks = append(m.Tasks, TaskTime{Task: int(t.Task), Cycles: t.Cycles})
	}
	m.Output = inf.Output
	return m, nil
}
