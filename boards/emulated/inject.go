package emulated

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/batteryless/harness/boards/qemu"
	"github.com/batteryless/harness/boards/serialboard"
	"github.com/batteryless/harness/harness/link"
	"github.com/batteryless/harness/harness/wire"
)

// Cut is a forced brown-out: while task Task runs, after Fraction of its
// duration (the warm-up inference's), power is cut and restored.
type Cut struct {
	Task     int     `json:"task"`
	Fraction float64 `json:"fraction"`
}

// InjectConfig is a fault-injection run on the emulated board.
type InjectConfig struct {
	ELF         string // firmware-noplan.elf
	Image       []byte // the plan image
	Tasks       int
	OutputBytes int
	Input, Want []byte
	Cuts        []Cut
	// Off is how long (wall) the board stays off at each cut; default 2 ms.
	Off         time.Duration
	HangTimeout time.Duration
	NoScrub     bool
	Logf        func(format string, args ...any)
}

// CutResult is what one cut did.
type CutResult struct {
	Cut
	// Landed: the cut struck while the task ran (its TASK_DONE had not
	// arrived); false when the task ended first (the cut then struck a
	// later task or the idle board).
	Landed bool `json:"landed"`
	// Resume is the progress word the board rebooted with.
	Resume int `json:"resume"`
}

// InjectResult is the outcome of an injection run.
type InjectResult struct {
	Tasks      int         `json:"tasks"`
	Cuts       []CutResult `json:"cuts"`
	Landed     int         `json:"landed"`
	Reexecuted int         `json:"reexecuted_tasks"`
	Boots      int         `json:"boots"`
	Verified   bool        `json:"verified"`
	Mismatches int         `json:"mismatches"` // output bytes that differ
	Detail     string      `json:"detail,omitempty"`
	// Attempts is how many injected runs were made (the result is the
	// best; see Inject).
	Attempts int `json:"attempts"`
}

// injector is bench power with forced cuts: the serialboard.Power of
// Inject.
type injector struct {
	serialboard.Bench
	m   *qemu.Machine
	off time.Duration
	mu  sync.Mutex
	on  bool
	// started, if set, is called once at the first Release: right after
	// START's answer, when task 0 begins.
	started func()
}

// Release implements serialboard.Power.
func (j *injector) Release() {
	j.mu.Lock()
	f := j.started
	j.started = nil
	j.mu.Unlock()
	if f != nil {
		f()
	}
}

func (j *injector) On() bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	return j.on
}

// cut stops and resets QEMU (the SRAM scrub is re-applied), waits off, and
// continues.
func (j *injector) cut(ctx context.Context) error {
	j.mu.Lock()
	j.on = false
	j.mu.Unlock()
	if err := j.m.Stop(ctx); err != nil {
		return err
	}
	if err := j.m.SystemReset(ctx); err != nil {
		return err
	}
	time.Sleep(j.off)
	if err := j.m.Cont(ctx); err != nil {
		return err
	}
	j.mu.Lock()
	j.on = true
	j.mu.Unlock()
	return nil
}

// Inject runs a warm-up inference on bench power (which measures each
// task's wall duration and checks the output), then one inference with a
// brown-out forced at each cut, and verifies its output bit for bit. An
// injected run whose cuts mostly missed their tasks (timed by the wall
// clock, on a loaded host) is made again, up to maxAttempts runs.
func Inject(ctx context.Context, cfg InjectConfig) (*InjectResult, error) {
	if cfg.Tasks <= 0 || len(cfg.Want) == 0 || cfg.Image == nil {
		return nil, errors.New("emulated: InjectConfig needs Image, Tasks and Want")
	}
	if cfg.OutputBytes == 0 {
		cfg.OutputBytes = len(cfg.Want)
	}
	if cfg.Off <= 0 {
		cfg.Off = 2 * time.Millisecond
	}
	for _, c := range cfg.Cuts {
		if c.Task < 0 || c.Task >= cfg.Tasks || c.Fraction < 0 || c.Fraction >= 1 {
			return nil, fmt.Errorf("emulated: cut %+v: want 0 <= task < %d and 0 <= fraction < 1", c, cfg.Tasks)
		}
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	m, dir, err := startMachine(ctx, cfg.ELF, cfg.Image, cfg.NoScrub, false)
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	defer m.Close()
	go func() {
		select {
		case <-m.Done():
			cancel()
		case <-ctx.Done():
		}
	}()
	l, err := link.Open(ctx, link.Config{Path: m.SerialPath()})
	if err != nil {
		return nil, fmt.Errorf("emulated: %w", err)
	}
	defer l.Close()
	brd := serialboard.New(l, serialboard.Config{Tasks: cfg.Tasks, OutputBytes: cfg.OutputBytes, HangTimeout: cfg.HangTimeout, Logf: cfg.Logf})
	fail := func(err error) (*InjectResult, error) {
		if merr := m.Err(); merr != nil {
			err = fmt.Errorf("%w (QEMU: %v)", err, merr)
		}
		return nil, fmt.Errorf("emulated: %w", err)
	}
	if _, err := brd.Hello(ctx); err != nil {
		return fail(err)
	}
	pw := &injector{Bench: serialboard.Bench{Reset: m.SystemReset}, m: m, off: cfg.Off, on: true}
	// Warm-up: each task's wall duration, from the arrival of the event
	// before it to its own TASK_DONE.
	dur := make([]time.Duration, cfg.Tasks)
	last := time.Time{}
	warm, err := brd.Infer(ctx, 1, cfg.Input, pw, func(ev link.Event) {
		if td, ok := ev.Msg.(*wire.TaskDone); ok && ev.Kind == link.BoardEvent {
			if !last.IsZero() && int(td.Task) < cfg.Tasks {
				dur[td.Task] = ev.Time.Sub(last)
			}
			last = ev.Time
		}
	})
	if err != nil {
		return fail(fmt.Errorf("warm-up: %w", err))
	}
	if ok, why := serialboard.Verify(warm.Output, cfg.Want); !ok {
		return fail(fmt.Errorf("warm-up on bench power: %s", why))
	}
	// The wall time per cycle, from the tasks after the first (task 0's
	// start is START's answer, which the observer does not see): each
	// task's duration is its cycles at that pace (see duration).
	var wallPerCycle float64
	if len(warm.Tasks) > 1 {
		var w, c float64
		for _, t := range warm.Tasks[1:] {
			if int(t.Task) < cfg.Tasks {
				w += dur[t.Task].Seconds()
				c += float64(t.Cycles)
			}
		}
		if c > 0 {
			wallPerCycle = w / c
		}
	}
	// Each task's cycles (the same in every run: QEMU counts instructions),
	// and the run's own wall time per cycle, followed from task to task:
	// the host's pace may have changed since the warm-up (a loaded machine
	// had made every cut land after its task).
	cycles := make([]float64, cfg.Tasks)
	for _, t := range warm.Tasks {
		if int(t.Task) < cfg.Tasks {
			cycles[t.Task] = float64(t.Cycles)
		}
	}
	began := make([]time.Time, cfg.Tasks)
	pace := wallPerCycle
	duration := func(task int) time.Duration {
		if cycles[task] > 0 && pace > 0 {
			return time.Duration(cycles[task] * pace * float64(time.Second))
		}
		return dur[task]
	}

	// The run: at each TASK_DONE (or START's answer) the next task begins;
	// a cut planned for it fires after its fraction of the duration.
	cuts := slices.Clone(cfg.Cuts)
	slices.SortStableFunc(cuts, func(a, b Cut) int { return a.Task - b.Task })
	var mu sync.Mutex // guards pace and began, which the attempts share
	attempt := func(seq uint32) (*InjectResult, error) {
		res := &InjectResult{Tasks: cfg.Tasks}
		pending := map[int][]Cut{}
		for _, c := range cuts {
			pending[c.Task] = append(pending[c.Task], c)
		}
		done := map[int]bool{}
		var cutErr error
		var wg sync.WaitGroup
		arm := func(task int, at time.Time) {
			// called under mu: the board has just begun task (again), at at
			began[task] = at
			cs := pending[task]
			if len(cs) == 0 {
				return
			}
			c := cs[0]
			pending[task] = cs[1:]
			wait := time.Duration(c.Fraction * float64(duration(task)))
			wg.Add(1)
			go func() {
				defer wg.Done()
				time.Sleep(wait)
				mu.Lock()
				landed := !done[task]
				mu.Unlock()
				if err := pw.cut(ctx); err != nil {
					mu.Lock()
					cutErr = err
					mu.Unlock()
					return
				}
				mu.Lock()
				res.Cuts = append(res.Cuts, CutResult{Cut: c, Landed: landed, Resume: -1})
				if landed {
					res.Landed++
				}
				mu.Unlock()
			}()
		}
		observe := func(ev link.Event) {
			if ev.Kind != link.BoardEvent {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			switch e := ev.Msg.(type) {
			case *wire.TaskDone:
				task := int(e.Task)
				done[task] = true
				if task < cfg.Tasks && !began[task].IsZero() && cycles[task] > 0 {
					if d := ev.Time.Sub(began[task]).Seconds(); d > 0 {
						pace = (pace + d/cycles[task]) / 2
					}
				}
				if next := task + 1; next < cfg.Tasks {
					delete(done, next)
					arm(next, ev.Time)
				}
			case *wire.Boot:
				if n := len(res.Cuts); n > 0 && res.Cuts[n-1].Resume < 0 {
					res.Cuts[n-1].Resume = int(e.Resume)
				}
				// The board resumes at its progress word: that task begins again.
				if r := int(e.Resume); r < cfg.Tasks && e.Flags&wire.BootRunning != 0 {
					delete(done, r)
					arm(r, ev.Time)
				}
			}
		}
		pw.mu.Lock()
		pw.started = func() {
			mu.Lock()
			arm(0, time.Now())
			mu.Unlock()
		}
		pw.mu.Unlock()
		inf, err := brd.Infer(ctx, seq, cfg.Input, pw, observe)
		wg.Wait()
		if errors.Is(err, serialboard.ErrProgressLost) {
			res.Verified, res.Mismatches, res.Detail = false, 1, err.Error()
			return res, nil
		}
		if err != nil {
			return fail(err)
		}
		if cutErr != nil {
			return fail(fmt.Errorf("cutting power: %w", cutErr))
		}
		res.Reexecuted = inf.Reexecuted
		res.Boots = inf.Boots
		ok, why := serialboard.Verify(inf.Output, cfg.Want)
		res.Verified = ok
		if !ok {
			res.Detail = why
			for i := range inf.Output {
				if i < len(cfg.Want) && inf.Output[i] != cfg.Want[i] {
					res.Mismatches++
				}
			}
			if len(inf.Output) != len(cfg.Want) {
				res.Mismatches = max(res.Mismatches, 1)
			}
		}
		return res, nil
	}

	// The cuts are timed by the wall clock: on a loaded host a run may see
	// every cut fall after its task (the board's events reaching the host
	// in bursts), which says nothing of the firmware. Such a run, and one
	// with fewer than half of its cuts inside their tasks, is tried again
	// at the pace it measured, up to maxAttempts runs; the best one counts.
	var best *InjectResult
	for n := 1; n <= maxAttempts; n++ {
		res, err := attempt(uint32(1 + n))
		if err != nil {
			return nil, err
		}
		res.Attempts = n
		if best == nil || res.Landed > best.Landed || !res.Verified {
			best = res
		}
		if !res.Verified || len(res.Cuts) == len(cuts) && 2*res.Landed >= len(cuts) {
			break
		}
	}
	return best, nil
}

// maxAttempts bounds the injected runs of Inject (see there).
const maxAttempts = 3
