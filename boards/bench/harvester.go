package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"sync"
	"time"

	"github.com/batteryless/harness/boards/supply"
	"github.com/batteryless/harness/harness/replay"
	"github.com/batteryless/harness/traces"
)

// The harvester mode (open loop, the board's own capacitor and power
// management): the supply plays the harvester. Its voltage is set to the
// capacitor's clamp and its current limit follows the trace's harvested
// power sample by sample, as the current a harvester's converter would
// give at the capacitor's voltage: I = P * efficiency / V, V measured just
// before and moved to the window's middle by what the power adds to the
// capacitor meanwhile (at least 0.1 V; I at most the board's limit); samples
// shorter than the stream's period are averaged (energy kept). The board
// turns itself on and off; the model runs beside it on the same trace, its
// edges paired with the board's BOOTs. Real time throughout: the off time
// cannot be compressed. While the host talks to the board (its input, its
// output) the rail holds its voltage (constant voltage, the limit raised)
// and the stream and the model's clock stand, as in gate mode.

// harvestPeriod is the stream's shortest period (REACT's 50 Hz).
const harvestPeriod = 20 * time.Millisecond

// vFloor is the lowest voltage the current is computed at (an empty
// capacitor would ask for an unbounded current).
const vFloor = 0.1

// harvestStream plays the trace's harvested power as the supply's current
// limit, in real time from start, holds excepted.
type harvestStream struct {
	b      *Board
	open   func() (traces.Reader, error)
	loop   bool
	eff    float64
	period time.Duration

	mu      sync.Mutex // one command to the supply at a time; the fields below
	start   time.Time
	holds   []hold
	held    time.Time // when the current hold began; zero: none
	current float64   // the last current limit set, A
	sent    int
	err     error

	stopc chan struct{}
	done  chan struct{}
}

// hold is a stretch of wall time at the model's instant t while the host
// talks to the board.
type hold struct {
	t float64
	d time.Duration
}

// wall is the wall instant of the model's instant t.
func (h *harvestStream) wall(t float64) time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.wallLocked(t)
}

func (h *harvestStream) wallLocked(t float64) time.Time {
	w := h.start.Add(time.Duration(t * 1e9))
	for _, x := range h.holds {
		if x.t < t {
			w = w.Add(x.d)
		}
	}
	return w
}

// prepareHarvester sets the supply to the clamp's voltage, measures the
// board's capacitor (the model starts from its voltage: cfg.Power.V0), and
// starts the stream.
func (b *Board) prepareHarvester(ctx context.Context, cfg *replay.Config) error {
	if cfg.OpenTrace == nil {
		return errors.New("bench: harvester mode: no trace")
	}
	vmax := min(b.prof.Power.VmaxV, b.prof.SupplyMaxV)
	h := &harvestStream{b: b, open: cfg.OpenTrace, loop: cfg.Loop, eff: cfg.Power.Efficiency,
		period: max(harvestPeriod, 4*b.caps.MinCommandInterval), stopc: make(chan struct{}), done: make(chan struct{})}
	if h.eff <= 0 {
		h.eff = 1
	}
	// The board starts off, as the model does: its capacitor drained to
	// brown-out.
	if _, err := b.edge(ctx, false); err != nil {
		return err
	}
	if err := supply.Pause(ctx, b.offForReset()); err != nil {
		return err
	}
	if err := b.setVoltage(ctx, vmax); err != nil {
		return err
	}
	if err := b.retry("current limit", func() error { return b.g.SetCurrentLimit(ctx, supply.FromAmps(1e-6)) }); err != nil {
		return err
	}
	if _, err := b.edge(ctx, true); err != nil {
		return err
	}
	r, err := b.ch.Measure(ctx)
	if err != nil {
		return fmt.Errorf("bench: harvester mode: measuring the board's capacitor: %w", err)
	}
	cfg.Power.V0 = min(max(supply.Volts(r.Voltage), 0), cfg.Power.Cap.Vmax)
	b.logf("harvester: the board's capacitor is at %.3f V; the model starts there", cfg.Power.V0)
	h.start = time.Now()
	b.harv, b.fixed = h, true
	go h.run()
	return nil
}

// stop ends the stream and waits for it.
func (h *harvestStream) stop() {
	select {
	case <-h.stopc:
	default:
		close(h.stopc)
	}
	<-h.done
}

// run streams the trace until its end (or, looped, until stopped).
func (h *harvestStream) run() {
	defer close(h.done)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-h.stopc:
			cancel()
		case <-h.done:
		}
	}()
	offset := 0.0
	for {
		end, err := h.pass(ctx, offset)
		if err != nil {
			if ctx.Err() == nil {
				h.mu.Lock()
				h.err = err
				h.mu.Unlock()
				h.b.logf("harvester stream: %v", err)
			}
			return
		}
		if !h.loop {
			return
		}
		offset = end
	}
}

// pass streams one pass of the trace, its time shifted by offset; it
// returns where the pass ends.
func (h *harvestStream) pass(ctx context.Context, offset float64) (float64, error) {
	r, err := h.open()
	if err != nil {
		return 0, err
	}
	if c, ok := r.(io.Closer); ok {
		defer c.Close()
	}
	first, err := r.Next()
	if err != nil {
		return 0, fmt.Errorf("the trace has no samples: %w", err)
	}
	// Windows of at least the period, each the mean power of its samples.
	winStart, energy, prev := first.T, 0.0, first
	flush := func(until float64) error {
		span := until - winStart
		if span <= 0 {
			return nil
		}
		if err := h.play(ctx, offset+(winStart-first.T), span, energy/span); err != nil {
			return err
		}
		winStart, energy = until, 0
		return nil
	}
	for {
		s, err := r.Next()
		if errors.Is(err, io.EOF) {
			period := r.Meta().Period
			if period <= 0 {
				period = 0.02
			}
			end := prev.T + period
			energy += prev.P * (end - prev.T)
			if err := flush(end); err != nil {
				return 0, err
			}
			return offset + (end - first.T), nil
		}
		if err != nil {
			return 0, err
		}
		energy += prev.P * (s.T - prev.T)
		prev = s
		if s.T-winStart >= h.period.Seconds() {
			if err := flush(s.T); err != nil {
				return 0, err
			}
		}
	}
}

// play sets the current limit for the power p from the model's instant t
// for span seconds.
func (h *harvestStream) play(ctx context.Context, t, span, p float64) error {
	for {
		h.mu.Lock()
		if h.held.IsZero() {
			at := h.wallLocked(t)
			h.mu.Unlock()
			if err := supply.Pause(ctx, time.Until(at)); err != nil {
				return err
			}
			h.mu.Lock()
			if h.held.IsZero() && !time.Now().Before(h.wallLocked(t)) {
				break // not held meanwhile: play it (with mu held)
			}
		}
		h.mu.Unlock()
		if err := supply.Pause(ctx, time.Millisecond); err != nil {
			return err
		}
	}
	defer h.mu.Unlock()
	r, err := h.b.ch.Measure(ctx)
	if err != nil {
		return fmt.Errorf("measuring the rail: %w", err)
	}
	// The current at the window's middle voltage: what the power adds to
	// the capacitor over half the window, on what it holds now.
	v := max(supply.Volts(r.Voltage), vFloor)
	if c := h.b.prof.Power.CapacitanceF; c > 0 {
		v = math.Sqrt(v*v + p*h.eff*span/c)
	}
	i := min(max(p*h.eff/v, 1e-6), h.b.prof.SupplyMaxA)
	if err := h.b.g.SetCurrentLimit(ctx, supply.FromAmps(i)); err != nil {
		return fmt.Errorf("current limit: %w", err)
	}
	h.current = i
	h.sent++
	return nil
}

// holdRail holds the rail at its voltage while the host talks to the board
// at the model's instant t: the stream and the model's clock stand.
func (b *Board) holdRail(ctx context.Context) error {
	h := b.harv
	if h == nil {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if !h.held.IsZero() {
		return nil
	}
	r, err := b.ch.Measure(ctx)
	if err != nil {
		return fmt.Errorf("bench: harvester hold: %w", err)
	}
	v := math.Max(supply.Volts(r.Voltage), b.prof.Power.VoffV)
	if err := b.g.SetVoltage(ctx, supply.FromVolts(v)); err != nil {
		return fmt.Errorf("bench: harvester hold: %w", err)
	}
	if err := b.g.SetCurrentLimit(ctx, supply.FromAmps(b.prof.SupplyMaxA)); err != nil {
		return fmt.Errorf("bench: harvester hold: %w", err)
	}
	h.held = time.Now()
	return nil
}

// releaseRail ends the hold: the clamp's voltage and the stream's current
// again; the hold's time is added at the model's instant t.
func (b *Board) releaseRail(ctx context.Context, t float64) error {
	h := b.harv
	if h == nil {
		return nil
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.held.IsZero() {
		return nil
	}
	if err := b.g.SetCurrentLimit(ctx, supply.FromAmps(max(h.current, 1e-6))); err != nil {
		return fmt.Errorf("bench: harvester hold: %w", err)
	}
	vmax := min(b.prof.Power.VmaxV, b.prof.SupplyMaxV)
	if err := b.g.SetVoltage(ctx, supply.FromVolts(vmax)); err != nil {
		return fmt.Errorf("bench: harvester hold: %w", err)
	}
	h.holds = append(h.holds, hold{t: t, d: time.Since(h.held)})
	h.held = time.Time{}
	return nil
}
