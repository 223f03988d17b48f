// Package emulated runs the real STM32 firmware in QEMU (boards/qemu) under
// the power system model (harness/power), in real time scaled by TimeScale:
// one simulated second lasts TimeScale wall seconds. While the model says the
// board is on, QEMU runs and the board draws the profile's ActivePowerW; at a
// brown-out QEMU is stopped and reset (system_reset re-applies the SRAM
// scrub: volatile state lost, NVM kept) and stays stopped while off; at
// turn-on it continues. The host drives the board over harness/link
// (SET_INPUT, START, events, READ_OUTPUT) and checks every output against the
// reference executor. A board silent for longer than HangTimeout while
// powered is power-cycled and counted as a hang. QEMU is closed on every
// exit path.
package emulated

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/batteryless/harness/boards"
	"github.com/batteryless/harness/boards/qemu"
	"github.com/batteryless/harness/harness/link"
	"github.com/batteryless/harness/harness/power"
	"github.com/batteryless/harness/harness/replay"
	"github.com/batteryless/harness/harness/wire"
)

// Config of an emulated run.
type Config struct {
	ELF     string          // the STM32 wire firmware (make stm32f4), its plan linked in
	Profile *boards.Profile // power defaults and ActivePowerW
	Input   []byte          // the input tensor
	Want    []byte          // the expected output (refexec.New(m).Run(input))

	// Harvest is the harvested power in W at simulated time t (s).
	Harvest func(t float64) float64
	// TimeScale: wall seconds per simulated second; default 1.
	TimeScale float64
	// Inferences to run; default 1 (more is not supported yet).
	Inferences int
	// Step is the wall time between two advances of the model; default 1 ms.
	Step time.Duration
	// HangTimeout: no event for this long (wall) while on is a hang; default 5 s.
	HangTimeout time.Duration
	// MaxSimTime ends the run (TraceEnded) after this many simulated seconds; 0: none.
	MaxSimTime float64
	// V0 is the capacitor's initial voltage.
	V0 float64
	// Logf, if set, receives one line per power event and board event.
	Logf func(format string, args ...any)
}

// Result is replay.Result plus what only an emulated board has.
type Result struct {
	replay.Result
	Hangs int `json:"hangs"`
	Boots int `json:"boots"` // BOOT events seen
	// CyclesPerInference: the brown-outs from each inference's START to its RESULT.
	CyclesPerInference []int `json:"cycles_per_inference"`
}

// powerBoard is the power model driving QEMU.
type powerBoard struct {
	mu    sync.Mutex
	sys   *power.System
	m     *qemu.Machine
	cfg   *Config
	on    bool
	force bool // a hang: power-cycle at the next step
	hold  bool // the model is frozen while on (the host reads the output)
	cyc   int  // brown-outs (power cycles)
	onCh  chan struct{}
	err   error
}

func (b *powerBoard) isOn() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.on
}

func (b *powerBoard) setHold(h bool) {
	b.mu.Lock()
	b.hold = h
	b.mu.Unlock()
}

func (b *powerBoard) logf(format string, args ...any) {
	if b.cfg.Logf != nil {
		b.cfg.Logf(format, args...)
	}
}

// run advances the model in scaled real time until ctx is done.
func (b *powerBoard) run(ctx context.Context) error {
	cfg := b.cfg
	tick := time.NewTicker(cfg.Step)
	defer tick.Stop()
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-b.m.Done():
			return b.m.Err()
		case now := <-tick.C:
			dt := now.Sub(last).Seconds() / cfg.TimeScale
			last = now
			b.mu.Lock()
			force := b.force
			b.force = false
			if b.hold && b.on {
				dt = 0
			}
			b.mu.Unlock()
			if force && b.isOn() {
				// A hang: reset the board without touching the model.
				if err := b.m.Stop(ctx); err != nil {
					return err
				}
				if err := b.m.SystemReset(ctx); err != nil {
					return err
				}
				if err := b.m.Cont(ctx); err != nil {
					return err
				}
				b.logf("hang: power-cycled at t=%.4f s", b.sys.Time())
			}
			for dt > 0 {
				if err := b.sys.SetHarvest(max(cfg.Harvest(b.sys.Time()), 0)); err != nil {
					return err
				}
				adv, ev := b.sys.Advance(dt)
				dt -= adv
				switch ev {
				case power.BrownedOut:
					if err := b.m.Stop(ctx); err != nil {
						return err
					}
					if err := b.m.SystemReset(ctx); err != nil {
						return err
					}
					b.mu.Lock()
					b.on = false
					b.cyc++
					b.mu.Unlock()
					b.sys.SetLoad(0)
					b.logf("brown-out at t=%.4f s (V=%.3f)", b.sys.Time(), b.sys.Voltage())
				case power.TurnedOn:
					b.sys.SetLoad(cfg.Profile.ActivePowerW)
					if err := b.m.Cont(ctx); err != nil {
						return err
					}
					b.mu.Lock()
					b.on = true
					b.mu.Unlock()
					select {
					case b.onCh <- struct{}{}:
					default:
					}
					b.logf("turn-on at t=%.4f s (V=%.3f)", b.sys.Time(), b.sys.Voltage())
				case power.None:
					dt = 0
				}
			}
		}
	}
}

// Run runs cfg.Inferences inferences on the emulated board.
func Run(ctx context.Context, cfg Config) (res Result, err error) {
	if cfg.TimeScale <= 0 {
		cfg.TimeScale = 1
	}
	if cfg.Inferences <= 0 {
		cfg.Inferences = 1
	}
	if cfg.Step <= 0 {
		cfg.Step = time.Millisecond
	}
	if cfg.HangTimeout <= 0 {
		cfg.HangTimeout = 5 * time.Second
	}
	if cfg.Inferences > 1 {
		// Unfinished: the second inference needs the input again (the plan
		// reuses its NVM area: without SET_INPUT the output differs), and a
		// SET_INPUT after the first RESULT got no answer under power cycling.
		return res, errors.New("emulated: only one inference per run so far")
	}
	if cfg.Profile == nil || cfg.Harvest == nil || len(cfg.Want) == 0 {
		return res, errors.New("emulated: Config needs Profile, Harvest and Want")
	}
	p := cfg.Profile
	sys, err := power.New(power.Config{
		Cap:        power.Capacitor{C: p.Power.CapacitanceF, Vmax: p.Power.VmaxV, Rleak: p.Power.LeakageOhm},
		Th:         power.Thresholds{Von: p.Power.VonV, Voff: p.Power.VoffV},
		Efficiency: p.Power.Efficiency,
		V0:         cfg.V0,
	})
	if err != nil {
		return res, err
	}
	wall0 := time.Now()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	m, err := qemu.Start(ctx, qemu.Config{ELF: cfg.ELF, ICountShift: -1, Scrub: &qemu.Scrub{Addr: qemu.SRAMAddr, Pattern: 0xA5}})
	if err != nil {
		return res, err
	}
	defer m.Close()
	l, err := link.Open(ctx, link.Config{Path: m.SerialPath()})
	if err != nil {
		return res, err
	}
	defer l.Close()

	// Set-up on bench power: HELLO and the input (kept in NVM).
	if _, err := l.Hello(ctx); err != nil {
		return res, fmt.Errorf("emulated: HELLO: %w", err)
	}
	if err := l.SetInput(ctx, cfg.Input); err != nil {
		return res, fmt.Errorf("emulated: SET_INPUT: %w", err)
	}
	// Now the power model owns the supply: off until it turns on.
	if err := m.Stop(ctx); err != nil {
		return res, err
	}
	if err := m.SystemReset(ctx); err != nil {
		return res, err
	}
	for drained := false; !drained; {
		select {
		case <-l.Events():
		default:
			drained = true
		}
	}
	b := &powerBoard{sys: sys, m: m, cfg: &cfg, onCh: make(chan struct{}, 1)}
	pctx, pcancel := context.WithCancel(ctx)
	perr := make(chan error, 1)
	go func() {
		e := b.run(pctx)
		if pctx.Err() != nil {
			e = nil // stopped by Run: a QMP call cut by the cancellation is no failure
		}
		perr <- e
	}()
	defer func() {
		pcancel()
		if e := <-perr; e != nil && err == nil {
			err = e
		}
	}()

	simNow := func() float64 {
		b.mu.Lock()
		defer b.mu.Unlock()
		return b.sys.Time()
	}
	for n := 1; n <= cfg.Inferences; n++ {
		t0 := time.Now()
		b.mu.Lock()
		cyc0 := b.cyc
		b.mu.Unlock()
		// START, in the background, right after a BOOT (the board listens
		// then, and the on time is short): it retries across the off times.
		startErr := make(chan error, 1)
		started := false
		send := func() {
			if !started {
				started = true
				go func(n uint32) { startErr <- l.Start(ctx, n) }(uint32(n))
			}
		}
		if n > 1 {
			// The plan may reuse the input's NVM area: write the input again
			// (the board just answered READ_OUTPUT; the link retries across
			// off times).
			if err := l.SetInput(ctx, cfg.Input); err != nil {
				return finish(res, b, wall0, cfg), fmt.Errorf("emulated: SET_INPUT before inference %d: %w", n, err)
			}
			send()
		}
		var got *wire.Result
		lastEv := time.Now()
		hang := time.NewTicker(cfg.HangTimeout / 10)
		for got == nil {
			select {
			case e := <-startErr:
				if e != nil {
					hang.Stop()
					return finish(res, b, wall0, cfg), fmt.Errorf("emulated: START %d: %w", n, e)
				}
				b.mu.Lock()
				cyc0 = b.cyc
				b.mu.Unlock()
				t0 = time.Now()
				b.logf("START %d acknowledged", n)
			case ev, ok := <-l.Events():
				if !ok {
					hang.Stop()
					return res, errors.New("emulated: link closed")
				}
				lastEv = time.Now()
				if ev.Kind != link.BoardEvent {
					continue
				}
				switch e := ev.Msg.(type) {
				case *wire.Boot:
					res.Boots++
					send()
					b.logf("BOOT boots=%d resume=%d flags=%#x", e.Boots, e.Resume, e.Flags)
				case *wire.TaskDone:
					res.TasksRun++
					b.logf("TASK_DONE %d cycles %d", e.Task, e.Cycles)
				case *wire.Commit:
					res.Commits++
					b.logf("COMMIT %d", e.Progress)
				case *wire.Result:
					if e.Inference == uint32(n) {
						got = e
					}
				}
			case <-b.onCh:
				lastEv = time.Now()
			case <-hang.C:
				if b.isOn() && time.Since(lastEv) > cfg.HangTimeout {
					res.Hangs++
					b.mu.Lock()
					b.force = true
					b.mu.Unlock()
					lastEv = time.Now()
				}
			case e := <-perr:
				hang.Stop()
				perr <- e
				return res, fmt.Errorf("emulated: power loop: %v", e)
			case <-ctx.Done():
				hang.Stop()
				return res, ctx.Err()
			}
			if cfg.MaxSimTime > 0 && simNow() > cfg.MaxSimTime {
				hang.Stop()
				res.TraceEnded = true
				return finish(res, b, wall0, cfg), nil
			}
		}
		hang.Stop()
		b.mu.Lock()
		res.CyclesPerInference = append(res.CyclesPerInference, b.cyc-cyc0)
		b.mu.Unlock()
		// The read-out is the harness's measurement, not the board's work:
		// the model is frozen while the board is on (if RESULT came just
		// before a brown-out, it runs until the next turn-on first).
		b.setHold(true)
		out, err := l.ReadOutput(ctx, 0, len(cfg.Want))
		b.setHold(false)
		if err != nil {
			return res, fmt.Errorf("emulated: READ_OUTPUT %d: %w", n, err)
		}
		res.Inferences++
		if bytes.Equal(out, cfg.Want) {
			res.Verified++
		} else {
			res.Mismatches++
			b.logf("inference %d: output %x, want %x", n, out, cfg.Want)
		}
		res.Latencies = append(res.Latencies, time.Since(t0).Seconds()/cfg.TimeScale)
	}
	return finish(res, b, wall0, cfg), nil
}

func finish(res Result, b *powerBoard, wall0 time.Time, cfg Config) Result {
	b.mu.Lock()
	defer b.mu.Unlock()
	c := b.sys.Counters()
	res.PowerCycles = b.cyc
	res.HarvestedJ = c.Harvested
	res.TimeOn, res.TimeOff = c.TimeOn, c.TimeOff
	res.SimTime = b.sys.Time()
	res.WallS = time.Since(wall0).Seconds()
	if n := len(res.Latencies); n > 0 {
		s := slices.Clone(res.Latencies)
		slices.Sort(s)
		sum := 0.0
		for _, v := range s {
			sum += v
		}
		res.Latency = replay.Latency{Mean: sum / float64(n), P50: s[n/2], P95: s[min(n-1, n*95/100)], Max: s[n-1]}
	}
	return res
}
