package emulated

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/batteryless/harness/boards/qemu"
	"github.com/batteryless/harness/boards/serialboard"
	"github.com/batteryless/harness/harness/link"
	"github.com/batteryless/harness/harness/wire"
)

// symNVMWrite is the port's NVM write: every write a task makes to NVM (its
// output region's runs, a partial sum, the progress word) goes through it.
const symNVMWrite = "port_nvm_write"

// Cut is a forced brown-out inside task Task: just before one of the task's
// NVM writes, the one after Fraction of them (its output region's writes,
// then, for a task that commits, the progress word). Power is cut there, at
// that exact instruction (QEMU's gdbstub stops the guest), and restored.
type Cut struct {
	Task     int     `json:"task"`
	Fraction float64 `json:"fraction"`
}

// InjectConfig is a fault-injection run on the emulated board.
type InjectConfig struct {
	ELF   string // firmware-noplan.elf
	Image []byte // the plan image
	Tasks int
	// Droop, when set, makes the firmware's supply readings (a plan with
	// the run-time rule or jit checkpoints) read high, Von, except every
	// DroopEvery-th, which reads Low: the rule commits early and sleeps,
	// jit saves its snapshot and sleeps (the sleep ends at once), so that
	// the cuts also strike those writes. Nil: the readings are 0 (no ADC).
	Droop       *Droop
	OutputBytes int
	Input, Want []byte
	Cuts        []Cut
	HangTimeout time.Duration
	NoScrub     bool
	Logf        func(format string, args ...any)
}

// Droop is the supply the firmware reads during an injection (see
// InjectConfig.Droop).
type Droop struct {
	High, Low float64 // volts
	Every     int     // every Every-th reading is Low (default 3)
}

// CutResult is what one cut did.
type CutResult struct {
	Cut
	// Write is the task's NVM write the cut came before (0-based), of
	// Writes in all.
	Write  int `json:"write"`
	Writes int `json:"writes"`
	// Resume is the progress word the board rebooted with (-1: unknown).
	Resume int `json:"resume"`
}

// InjectResult is the outcome of an injection run.
type InjectResult struct {
	Tasks int         `json:"tasks"`
	Cuts  []CutResult `json:"cuts"`
	// Landed counts the cuts made inside their task: all of them, as
	// they are made at the task's own NVM writes.
	Landed     int    `json:"landed"`
	Reexecuted int    `json:"reexecuted_tasks"`
	Boots      int    `json:"boots"`
	Verified   bool   `json:"verified"`
	Mismatches int    `json:"mismatches"` // output bytes that differ
	Detail     string `json:"detail,omitempty"`
	Attempts   int    `json:"attempts"`
	// Readings and Sleeps count the firmware's supply readings and sleeps
	// (with a Droop).
	Readings int `json:"supply_readings,omitempty"`
	Sleeps   int `json:"sleeps,omitempty"`
}

// Inject checks the firmware's commit protocol under power failures at
// its most fragile instants: a warm-up inference on bench power checks the
// output; a second counts each task's NVM writes (QEMU's gdbstub stops the
// guest at every task's start and at every NVM write); a third cuts the
// power (a reset that scrubs the SRAM) just before the write each cut
// names, and its output is verified bit for bit. The cuts are exact: they
// do not depend on the host's speed.
func Inject(ctx context.Context, cfg InjectConfig) (*InjectResult, error) {
	if cfg.Tasks <= 0 || len(cfg.Want) == 0 || cfg.Image == nil {
		return nil, errors.New("emulated: InjectConfig needs Image, Tasks and Want")
	}
	if cfg.OutputBytes == 0 {
		cfg.OutputBytes = len(cfg.Want)
	}
	for _, c := range cfg.Cuts {
		if c.Task < 0 || c.Task >= cfg.Tasks || c.Fraction < 0 || c.Fraction >= 1 {
			return nil, fmt.Errorf("emulated: cut %+v: want 0 <= task < %d and 0 <= fraction < 1", c, cfg.Tasks)
		}
	}
	in := &injection{cfg: &cfg, writes: make([]int, cfg.Tasks), pending: map[int][]Cut{}}
	if err := in.symbols(); err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	m, dir, err := startMachine(ctx, cfg.ELF, cfg.Image, cfg.NoScrub, true)
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	defer m.Close()
	in.m = m
	go func() {
		select {
		case <-m.Done():
			cancel()
		case <-ctx.Done():
		}
	}()
	if in.g, err = m.ConnectGDB(ctx); err != nil {
		return in.fail(err)
	}
	defer in.g.Close()
	l, err := link.Open(ctx, link.Config{Path: m.SerialPath()})
	if err != nil {
		return in.fail(err)
	}
	defer l.Close()
	in.brd = serialboard.New(l, serialboard.Config{Tasks: cfg.Tasks, OutputBytes: cfg.OutputBytes, HangTimeout: cfg.HangTimeout, Logf: cfg.Logf})
	res, err := in.run(ctx)
	if err != nil {
		return in.fail(err)
	}
	return res, nil
}

// injection is the state of one Inject.
type injection struct {
	cfg *InjectConfig
	m   *qemu.Machine
	g   *qemu.GDB
	brd *serialboard.Board

	taskAddr, writeAddr uint32
	taskReg             int
	// the supply reading and the sleep (0 when the firmware has none)
	supplyAddr, supplyWord, sleepAddr uint32
	readings, sleeps                  int

	mu      sync.Mutex
	mode    int   // what the stops do: counting or cutting
	cur     int   // the task running, -1 before the first
	n       int   // its writes so far
	writes  []int // each task's NVM writes (the counting run's)
	pending map[int][]Cut
	target  int // the write of the task to cut before, -1: none
	cutNow  Cut
	res     *InjectResult
	stopErr error
}

const (
	counting = iota
	cutting
)

func (in *injection) symbols() error {
	var err error
	if in.taskAddr, err = qemu.Symbol(in.cfg.ELF, symTaskBegin); err == nil {
		in.taskReg = 0
	} else if in.taskAddr, err = qemu.Symbol(in.cfg.ELF, symTaskGet); err == nil {
		in.taskReg = 1
	} else {
		return fmt.Errorf("emulated: inject: the firmware has neither %s nor %s: %w", symTaskBegin, symTaskGet, err)
	}
	if in.writeAddr, err = qemu.Symbol(in.cfg.ELF, symNVMWrite); err != nil {
		return fmt.Errorf("emulated: inject: %w", err)
	}
	if in.cfg.Droop == nil {
		return nil
	}
	for _, s := range []struct {
		name string
		addr *uint32
	}{{symSupply, &in.supplyAddr}, {symSupplyWord, &in.supplyWord}, {symSleep, &in.sleepAddr}} {
		if *s.addr, err = qemu.Symbol(in.cfg.ELF, s.name); err != nil {
			return fmt.Errorf("emulated: inject: a supply droop needs the firmware's supply reading: %w", err)
		}
	}
	if in.cfg.Droop.Every <= 0 {
		in.cfg.Droop.Every = 3
	}
	return nil
}

func (in *injection) fail(err error) (*InjectResult, error) {
	if merr := in.m.Err(); merr != nil && !strings.Contains(err.Error(), merr.Error()) {
		err = fmt.Errorf("%w (QEMU: %v)", err, merr)
	}
	return nil, fmt.Errorf("emulated: inject: %w", err)
}

// run makes the three inferences: the warm-up without breakpoints, the
// counting run and the injected run with them.
func (in *injection) run(ctx context.Context) (*InjectResult, error) {
	cfg := in.cfg
	if err := in.g.Continue(); err != nil {
		return nil, err
	}
	if _, err := in.brd.Hello(ctx); err != nil {
		return nil, err
	}
	bench := &serialboard.Bench{Reset: in.m.SystemReset}
	warm, err := in.brd.Infer(ctx, 1, cfg.Input, bench, nil)
	if err != nil {
		return nil, fmt.Errorf("warm-up: %w", err)
	}
	if ok, why := serialboard.Verify(warm.Output, cfg.Want); !ok {
		return nil, fmt.Errorf("warm-up on bench power: %s", why)
	}
	// The breakpoints go in once the guest is stopped.
	if err := in.g.Interrupt(); err != nil {
		return nil, err
	}
	if s := <-in.g.Stopped(); strings.HasPrefix(s, "E:") {
		return nil, fmt.Errorf("gdbstub: %s", s[2:])
	}
	for _, a := range []uint32{in.taskAddr, in.writeAddr, in.supplyAddr, in.sleepAddr} {
		if a == 0 {
			continue
		}
		if err := in.g.Break(a); err != nil {
			return nil, err
		}
	}
	sctx, stop := context.WithCancel(ctx)
	stopped := make(chan struct{})
	go func() { defer close(stopped); in.follow(sctx) }()
	defer func() { stop(); <-stopped }()
	if err := in.g.Continue(); err != nil {
		return nil, err
	}
	// Counting.
	in.setMode(counting)
	if _, err := in.brd.Infer(ctx, 2, cfg.Input, bench, nil); err != nil {
		return nil, fmt.Errorf("counting the tasks' NVM writes: %w", in.why(err))
	}
	// Cutting.
	in.res = &InjectResult{Tasks: cfg.Tasks, Attempts: 1}
	for _, c := range cfg.Cuts {
		in.pending[c.Task] = append(in.pending[c.Task], c)
	}
	in.setMode(cutting)
	inf, err := in.brd.Infer(ctx, 3, cfg.Input, bench, in.observe)
	res := in.result()
	if errors.Is(err, serialboard.ErrProgressLost) {
		res.Verified, res.Mismatches, res.Detail = false, 1, err.Error()
		return res, nil
	}
	if err != nil {
		return nil, in.why(err)
	}
	res.Reexecuted, res.Boots = inf.Reexecuted, inf.Boots
	in.mu.Lock()
	res.Readings, res.Sleeps = in.readings, in.sleeps
	in.mu.Unlock()
	if ok, why := serialboard.Verify(inf.Output, cfg.Want); ok {
		res.Verified = true
	} else {
		res.Detail = why
		for i := range inf.Output {
			if i < len(cfg.Want) && inf.Output[i] != cfg.Want[i] {
				res.Mismatches++
			}
		}
		res.Mismatches = max(res.Mismatches, 1)
	}
	return res, nil
}

func (in *injection) setMode(mode int) {
	in.mu.Lock()
	in.mode, in.cur, in.n, in.target = mode, -1, 0, -1
	in.mu.Unlock()
}

// result is the injected run's result so far, the cuts sorted as made.
func (in *injection) result() *InjectResult {
	in.mu.Lock()
	defer in.mu.Unlock()
	res := *in.res
	res.Cuts = slices.Clone(in.res.Cuts)
	return &res
}

// why names the stop handler's failure as the cause, when there is one.
func (in *injection) why(err error) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	if in.stopErr != nil {
		return fmt.Errorf("%w (at a breakpoint: %v)", err, in.stopErr)
	}
	return err
}

// observe notes where the board resumed after each cut.
func (in *injection) observe(ev link.Event) {
	if ev.Kind != link.BoardEvent {
		return
	}
	boot, ok := ev.Msg.(*wire.Boot)
	if !ok {
		return
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	if n := len(in.res.Cuts); n > 0 && in.res.Cuts[n-1].Resume < 0 {
		in.res.Cuts[n-1].Resume = int(boot.Resume)
	}
}

// follow handles the guest's stops until ctx ends: at a task's start it
// notes the task (and, cutting, which write to cut before); at an NVM
// write it counts, or cuts.
func (in *injection) follow(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case s := <-in.g.Stopped():
			if err := in.atStop(ctx, s); err != nil {
				in.mu.Lock()
				in.stopErr = err
				in.mu.Unlock()
				return
			}
		}
	}
}

func (in *injection) atStop(ctx context.Context, s string) error {
	if strings.HasPrefix(s, "E:") {
		return fmt.Errorf("gdbstub: %s", s[2:])
	}
	pc, err := in.g.ReadRegister(15)
	if err != nil {
		return err
	}
	switch pc {
	case in.taskAddr &^ 1:
		r, err := in.g.ReadRegister(in.taskReg)
		if err != nil {
			return err
		}
		in.beginTask(int(r))
		if err := in.g.StepOverBreak(in.taskAddr); err != nil {
			return err
		}
	case in.writeAddr &^ 1:
		cut, err := in.atWrite(ctx)
		if err != nil {
			return err
		}
		if !cut {
			if err := in.g.StepOverBreak(in.writeAddr); err != nil {
				return err
			}
		}
	case in.supplyAddr &^ 1:
		if err := in.answerSupply(); err != nil {
			return err
		}
		if err := in.g.StepOverBreak(in.supplyAddr); err != nil {
			return err
		}
	case in.sleepAddr &^ 1:
		// The sleep until the capacitor is charged ends at once.
		in.mu.Lock()
		if in.mode == cutting {
			in.sleeps++
		}
		in.mu.Unlock()
		if err := in.g.StepOverBreak(in.sleepAddr); err != nil {
			return err
		}
	default:
		return fmt.Errorf("the guest stopped at %#x, at none of the breakpoints", pc)
	}
	return in.g.Continue()
}

// answerSupply writes the supply reading the firmware is about to take:
// the droop's high voltage, or its low one every Every-th reading of the
// injected run (the counting run reads high: its counts are of the plain
// run, and the cuts' fractions of them).
func (in *injection) answerSupply() error {
	d := in.cfg.Droop
	in.mu.Lock()
	v := d.High
	if in.mode == cutting {
		in.readings++
		if in.readings%d.Every == 0 {
			v = d.Low
		}
	}
	in.mu.Unlock()
	mv := uint16(min(math.Round(v*1000), math.MaxUint16))
	return in.g.WriteMemory(in.supplyWord, []byte{byte(mv), byte(mv >> 8)})
}

// beginTask: task k starts (again); cutting, its next pending cut picks
// the write to cut before.
func (in *injection) beginTask(k int) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.cur, in.n, in.target = k, 0, -1
	if k < 0 || k >= len(in.writes) || in.mode != cutting {
		return
	}
	if cs := in.pending[k]; len(cs) > 0 {
		in.cutNow, in.pending[k] = cs[0], cs[1:]
		w := max(in.writes[k], 1)
		in.target = min(int(math.Floor(in.cutNow.Fraction*float64(w))), w-1)
	}
}

// atWrite: counting, the task's writes are counted; cutting, the write a
// cut names is not made: the power is cut just before it (cut is true).
func (in *injection) atWrite(ctx context.Context) (cut bool, err error) {
	in.mu.Lock()
	k, n := in.cur, in.n
	in.n++
	if in.mode == counting {
		if k >= 0 && k < len(in.writes) {
			in.writes[k] = max(in.writes[k], n+1)
		}
		in.mu.Unlock()
		return false, nil
	}
	if k < 0 || n != in.target {
		in.mu.Unlock()
		return false, nil
	}
	c := CutResult{Cut: in.cutNow, Write: n, Writes: in.writes[k], Resume: -1}
	in.target = -1
	in.mu.Unlock()
	if err := in.m.SystemReset(ctx); err != nil {
		return false, err
	}
	in.mu.Lock()
	in.res.Cuts = append(in.res.Cuts, c)
	in.res.Landed++
	in.cur, in.n = -1, 0
	in.mu.Unlock()
	if in.cfg.Logf != nil {
		in.cfg.Logf("cut in task %d before its NVM write %d of %d", k, n, c.Writes)
	}
	return true, nil
}
