package calibrate

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/batteryless/harness/boards/qemu"
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
	// Run runs one inference of the plan image img on input.
	Run(ctx context.Context, img, input []byte) (*Measurement, error)
	// Parallel is how many Runs may go on at once.
	Parallel() int
}

// QEMU runs each image on a fresh QEMU netduinoplus2 (boards/qemu) with
// firmware-noplan.elf, the image put at the plan region by a -device loader
// (the STM32 port refuses DEPLOY: the guest cannot write flash), under
// -icount shift=qemu.BoardICountShift: cycle counts are the same on any
// host. Runs are independent, so several go on at once.
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
func (q *QEMU) Run(ctx context.Context, img, input []byte) (m *Measurement, err error) {
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
	if err := os.WriteFile(file, img, 0o600); err != nil {
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
	// that a BOOT (and its cycles) comes while the link listens.
	if err := mc.SystemReset(ctx); err != nil {
		return nil, err
	}
	boot := waitBoot(ctx, l, 5*time.Second)
	m, err = infer(ctx, l, input)
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
// deployed with DEPLOY_CHUNK and DEPLOY_COMMIT, then run. One board, one
// run at a time. The firmware must have a writable image area: the ports
// of this repository refuse DEPLOY (firmware/ports/README.md), so with them
// Run fails at the first image.
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
func (s *Serial) Run(ctx context.Context, img, input []byte) (*Measurement, error) {
	t0 := time.Now()
	if _, err := s.l.Hello(ctx); err != nil {
		return nil, fmt.Errorf("%s: HELLO: %w", s.path, err)
	}
	if err := s.l.Deploy(ctx, img); err != nil {
		return nil, s.deployError(err)
	}
	m, err := infer(ctx, s.l, input)
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

// deployError explains a failed DEPLOY.
func (s *Serial) deployError(err error) error {
	var ce *link.CommandError
	if errors.As(err, &ce) && ce.Status == wire.StatusFailed && ce.Detail == 1 {
		return fmt.Errorf("%s: the board has no writable image area (DEPLOY answered FAILED, detail 1): its firmware takes no plan over the line: %w", s.path, err)
	}
	return fmt.Errorf("%s: DEPLOY: %w", s.path, err)
}

// infer runs one inference over a link: HELLO, SET_INPUT, START with the
// next inference number, the events up to RESULT, READ_OUTPUT (checked
// against RESULT's CRC).
func infer(ctx context.Context, l *link.Link, input []byte) (*Measurement, error) {
	m := &Measurement{}
	drain := func() error {
		for {
			select {
			case ev, ok := <-l.Events():
				if !ok {
					return errors.New("link closed")
				}
				if b, isBoot := ev.Msg.(*wire.Boot); isBoot {
					m.BootCycles = b.Cycles
				}
			default:
				return nil
			}
		}
	}
	if _, err := l.Hello(ctx); err != nil {
		return nil, fmt.Errorf("HELLO: %w", err)
	}
	if err := l.SetInput(ctx, input); err != nil {
		return nil, fmt.Errorf("SET_INPUT: %w", err)
	}
	// The inference number: one more than the last the board started (NVM
	// header bytes 12..15, harness/plan/FORMAT.md).
	hdr, err := l.ReadNVM(ctx, 12, 4)
	if err != nil {
		return nil, fmt.Errorf("READ_NVM: %w", err)
	}
	n := binary.LittleEndian.Uint32(hdr) + 1
	if n == 0 {
		n = 1
	}
	if err := drain(); err != nil {
		return nil, err
	}
	if err := l.Start(ctx, n); err != nil {
		return nil, fmt.Errorf("START %d: %w", n, err)
	}
	var res *wire.Result
	for res == nil {
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("inference %d: no RESULT after %d TASK_DONE: %w", n, len(m.Tasks), ctx.Err())
		case ev, ok := <-l.Events():
			if !ok {
				return nil, errors.New("link closed")
			}
			switch ev.Kind {
			case link.PortLost:
				return nil, fmt.Errorf("inference %d: serial port lost: %v", n, ev.Err)
			case link.BoardEvent:
			default:
				continue
			}
			if ev.Missed > 0 || ev.Rebooted {
				return nil, fmt.Errorf("inference %d: %d events lost (rebooted: %v): a calibration needs every TASK_DONE", n, ev.Missed, ev.Rebooted)
			}
			switch e := ev.Msg.(type) {
			case *wire.TaskDone:
				m.Tasks = append(m.Tasks, TaskTime{Task: int(e.Task), Cycles: e.Cycles})
			case *wire.Boot:
				return nil, fmt.Errorf("inference %d: the board rebooted after %d tasks (a calibration runs on steady power)", n, len(m.Tasks))
			case *wire.Log:
				if e.Level == 0 {
					return nil, fmt.Errorf("inference %d: the board reports an error: %s", n, e.Text)
				}
			case *wire.Result:
				if e.Inference == n {
					res = e
				}
			}
		}
	}
	out, err := l.ReadOutput(ctx, 0, int(res.Length))
	if err != nil {
		return nil, fmt.Errorf("READ_OUTPUT: %w", err)
	}
	if crc32.ChecksumIEEE(out) != res.CRC {
		return nil, fmt.Errorf("inference %d: the output read back has CRC-32 %#08x, RESULT said %#08x", n, crc32.ChecksumIEEE(out), res.CRC)
	}
	m.Output = out
	return m, nil
}
