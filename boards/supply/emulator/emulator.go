// Package emulator is a programmable supply that speaks SCPI over a real
// socket (and a pseudo-terminal, as a serial instrument), so that the
// drivers, the guard and the CLI run in CI without an instrument.
//
// Each dialect serves the command subset of its programming guide, as
// strictly as the instrument: long and short mnemonics, optional nodes,
// ';'-separated units with the standard's header path rules, no answer at
// all to a query it does not know (the client must time out), an error
// queue with the standard codes (-113 undefined header, -222 data out of
// range, -109 missing parameter, ...), one client at a time. Outputs,
// protection (OVP and OCP trips switch the output off) and lists or
// arbitrary waveforms that play out in time on a trigger are modelled;
// latency, jitter and disconnects can be injected.
//
// Every change of an output (setpoint, current limit, on/off, a
// protection trip, a list step, a trigger-out pulse) is an Event with its
// instant: written to the timeline (JSON Lines, for tests that read a file)
// and passed to Config.OnChange (for a load model to follow). What the
// output measures comes from a load: a resistor by default, or what the
// caller feeds back with SetDraw (the current a board draws).
package emulator

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/creack/pty"
	"golang.org/x/term"
)

// Event is one change of an output.
type Event struct {
	Time    time.Time `json:"time"`
	T       float64   `json:"t_s"` // seconds since the emulator started
	Channel int       `json:"ch"`
	// Kind is "voltage", "current", "output", "ovp", "ocp", "trip",
	// "clear", "list-step", "list-end", "trigger-out" or "reset".
	Kind   string  `json:"kind"`
	On     bool    `json:"on"`    // the output after the change
	Volts  float64 `json:"volts"` // the voltage setpoint after the change
	Amps   float64 `json:"amps"`  // the current limit after the change
	Detail string  `json:"detail,omitempty"`
}

// Config configures an emulated instrument.
type Config struct {
	Dialect string // a name of Dialects()
	Model   string // a model of the dialect ("" : its first)
	// Latency delays every answer; Jitter adds a uniform random delay up
	// to it (seeded by Seed).
	Latency, Jitter time.Duration
	Seed            uint64
	// Timeline, when not nil, gets every Event as a JSON line.
	Timeline io.Writer
	// OnChange, when not nil, is called with every Event (from the
	// emulator's goroutines, after the change; it must not block long).
	OnChange func(Event)
	// LoadOhms is the default resistive load on every output (1 kOhm when
	// 0).
	LoadOhms float64
}

// channel is one output's state.
type channel struct {
	num            int
	maxV, maxI     float64
	setV, setI     float64
	on             bool
	selected       bool // R&S: OUTP:SEL (the output is on when selected and the master is on)
	ovp, ocp       float64
	ovpOn, ocpOn   bool
	tripOVP        bool
	tripOCP        bool
	trigV, trigI   float64 // a triggered level pending (E36); NaN: none
	modeV          string  // FIX, LIST, ARB
	list           []step
	listCount      int
	listTermLast   bool
	cdw            []float64
	cdwDwell       float64
	armed          bool
	running        bool
	stopList       chan struct{}
	draw           float64 // A, fed back by the caller; NaN: none
	loadOhms       float64
	meter          func() (volts, amps float64) // a load model's measurement (SetMeter); nil: the built-in load
	lastOCPChecked bool
}

// step is one list step.
type step struct {
	v, i  float64
	dwell time.Duration
	bost  bool // trigger out at the beginning of the step
}

// Instrument is an emulated supply.
type Instrument struct {
	cfg     Config
	d       *dialect
	model   *model
	start   time.Time
	rng     *rand.Rand
	mu      sync.Mutex
	chans   []*channel
	queue   []errEntry
	general bool // R&S master output
	sel     int  // the selected channel (INST)
	trigSrc string
	events  []Event
	tlErr   error
	pending []Event    // events not yet passed to OnChange
	dispMu  sync.Mutex // keeps OnChange calls in order

	// session state
	connMu     sync.Mutex
	active     io.Closer
	dropAfter  int // close the connection when this many more commands arrive (0: never)
	lastAnswer time.Time
	closed     bool
	listeners  []io.Closer
	done       chan struct{} // closed by Close
	wg         sync.WaitGroup
}

type errEntry struct {
	code int
	msg  string
}

// New makes an instrument of a dialect.
func New(cfg Config) (*Instrument, error) {
	d := dialectByName(cfg.Dialect)
	if d == nil {
		return nil, fmt.Errorf("emulator: unknown dialect %q (known: %s)", cfg.Dialect, strings.Join(Dialects(), ", "))
	}
	m := &d.models[0]
	if cfg.Model != "" {
		m = nil
		for i := range d.models {
			if strings.EqualFold(d.models[i].name, cfg.Model) {
				m = &d.models[i]
			}
		}
		if m == nil {
			var names []string
			for _, x := range d.models {
				names = append(names, x.name)
			}
			return nil, fmt.Errorf("emulator: dialect %s has no model %q (known: %s)", d.name, cfg.Model, strings.Join(names, ", "))
		}
	}
	if cfg.LoadOhms <= 0 {
		cfg.LoadOhms = 1000
	}
	in := &Instrument{cfg: cfg, d: d, model: m, start: time.Now(), rng: rand.New(rand.NewPCG(cfg.Seed, 0x5c91)), sel: 1, done: make(chan struct{})}
	for i, r := range m.ranges {
		in.chans = append(in.chans, &channel{num: i + 1, maxV: r.v, maxI: r.i, loadOhms: cfg.LoadOhms})
	}
	in.reset()
	return in, nil
}

// Dialect is the instrument's dialect name; Model its model.
func (in *Instrument) Dialect() string { return in.d.name }

// Model is the emulated model, as *IDN? names it.
func (in *Instrument) Model() string { return in.model.name }

// IDN is the instrument's answer to *IDN?.
func (in *Instrument) IDN() string { return in.model.idn }

// reset sets the *RST state. Called with mu held (or before serving).
func (in *Instrument) reset() {
	for _, c := range in.chans {
		in.stopListLocked(c)
		*c = channel{num: c.num, maxV: c.maxV, maxI: c.maxI, loadOhms: c.loadOhms, meter: c.meter,
			setI: c.maxI, ovp: c.maxV * 1.1, ocp: c.maxI * 1.1, ovpOn: in.d.ovpOnAtReset,
			trigV: math.NaN(), trigI: math.NaN(), modeV: "FIX", listCount: 1, draw: math.NaN()}
	}
	in.general = false
	in.sel = 1
	in.trigSrc = "IMM"
}

// Close stops serving and ends the session.
func (in *Instrument) Close() error {
	in.connMu.Lock()
	if !in.closed {
		close(in.done)
	}
	in.closed = true
	for _, l := range in.listeners {
		l.Close()
	}
	if in.active != nil {
		in.active.Close()
	}
	in.connMu.Unlock()
	in.mu.Lock()
	for _, c := range in.chans {
		in.stopListLocked(c)
	}
	in.unlock()
	in.wg.Wait()
	return nil
}

// ---------------------------------------------------------------------------
// The outside world: load, state, events, faults.

// ChannelState is an output as seen from outside the instrument.
type ChannelState struct {
	On               bool
	Volts, Amps      float64 // setpoint and current limit
	OVP, OCP         float64 // levels
	OVPOn, OCPOn     bool
	TripOVP, TripOCP bool
	MeasuredVolts    float64
	MeasuredAmps     float64
	ListRunning      bool
}

// State returns output ch (from 1; the zero state for an output the
// instrument does not have).
func (in *Instrument) State(ch int) ChannelState {
	if ch < 1 || ch > len(in.chans) {
		return ChannelState{}
	}
	in.mu.Lock()
	defer in.mu.Unlock()
	c := in.chans[ch-1]
	v, i := in.measureLocked(c)
	return ChannelState{On: in.outputOn(c), Volts: c.setV, Amps: c.setI, OVP: c.ovp, OCP: c.ocp, OVPOn: c.ovpOn, OCPOn: c.ocpOn,
		TripOVP: c.tripOVP, TripOCP: c.tripOCP, MeasuredVolts: v, MeasuredAmps: i, ListRunning: c.running}
}

// Channels is the number of outputs.
func (in *Instrument) Channels() int { return len(in.chans) }

// SetDraw feeds back the current the load on output ch draws (what a board
// takes); NaN returns to the resistive load. A draw above the current
// limit puts the output in constant current (the voltage falls) and trips
// an armed OCP.
func (in *Instrument) SetDraw(ch int, amps float64) error {
	if ch < 1 || ch > len(in.chans) {
		return fmt.Errorf("emulator: no output %d (1 to %d)", ch, len(in.chans))
	}
	in.mu.Lock()
	defer in.unlock()
	c := in.chans[ch-1]
	c.draw = amps
	in.checkProtectionLocked(c)
	return nil
}

// SetLoadOhms sets the resistive load of output ch.
func (in *Instrument) SetLoadOhms(ch int, ohms float64) error {
	if ch < 1 || ch > len(in.chans) || !(ohms > 0) {
		return fmt.Errorf("emulator: output %d, load %g ohm: want an output from 1 to %d and a load above 0", ch, ohms, len(in.chans))
	}
	in.mu.Lock()
	defer in.unlock()
	c := in.chans[ch-1]
	c.loadOhms = ohms
	in.checkProtectionLocked(c)
	return nil
}

// SetMeter makes output ch measure what f says while it is on (the voltage
// and current of a load model, e.g. a capacitor the output charges in
// constant current, whose voltage is not the setpoint) instead of the
// built-in load; nil restores the built-in load. f is called with the
// instrument's lock held: it must not call back into the instrument.
func (in *Instrument) SetMeter(ch int, f func() (volts, amps float64)) error {
	if ch < 1 || ch > len(in.chans) {
		return fmt.Errorf("emulator: no output %d (1 to %d)", ch, len(in.chans))
	}
	in.mu.Lock()
	defer in.unlock()
	in.chans[ch-1].meter = f
	return nil
}

// Events returns every event so far.
func (in *Instrument) Events() []Event {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([]Event(nil), in.events...)
}

// TimelineErr is the first error writing the timeline.
func (in *Instrument) TimelineErr() error {
	in.mu.Lock()
	defer in.mu.Unlock()
	return in.tlErr
}

// DisconnectAfter closes the client's connection when the n-th command
// from now has been read, before it is carried out or answered (n >= 1; 0
// cancels): a disconnect in the middle of a command.
func (in *Instrument) DisconnectAfter(n int) {
	in.connMu.Lock()
	in.dropAfter = n
	in.connMu.Unlock()
}

// emit records an event. Called with mu held.
func (in *Instrument) emit(c *channel, kind, detail string) {
	now := time.Now()
	e := Event{Time: now, T: now.Sub(in.start).Seconds(), Channel: c.num, Kind: kind, On: in.outputOn(c), Volts: c.setV, Amps: c.setI, Detail: detail}
	if len(in.events) < 1<<20 {
		in.events = append(in.events, e)
	}
	if in.cfg.Timeline != nil && in.tlErr == nil {
		b, _ := json.Marshal(e)
		_, in.tlErr = in.cfg.Timeline.Write(append(b, '\n'))
	}
	if in.cfg.OnChange != nil {
		in.pending = append(in.pending, e)
	}
}

// unlock releases mu, then passes the events of the change to OnChange
// (outside the lock, so that a load model may call SetDraw from it).
func (in *Instrument) unlock() {
	ev := in.pending
	in.pending = nil
	if len(ev) == 0 {
		in.mu.Unlock()
		return
	}
	in.dispMu.Lock()
	in.mu.Unlock()
	defer in.dispMu.Unlock()
	for _, e := range ev {
		in.cfg.OnChange(e)
	}
}

// outputOn reports whether an output is on. Called with mu held.
func (in *Instrument) outputOn(c *channel) bool {
	if in.d.masterSwitch {
		return c.selected && in.general
	}
	return c.on
}

// measureLocked is what the output measures: 0 when off; else the
// setpoint into the load, limited by the current limit.
func (in *Instrument) measureLocked(c *channel) (v, i float64) {
	if !in.outputOn(c) {
		return 0, 0
	}
	if c.meter != nil {
		return c.meter()
	}
	v = c.setV
	switch {
	case !math.IsNaN(c.draw):
		i = c.draw
		if i > c.setI && i > 0 {
			v = c.setV * c.setI / i
			i = c.setI
		}
	default:
		i = v / c.loadOhms
		if i > c.setI {
			i = c.setI
			v = i * c.loadOhms
		}
	}
	return v, i
}

// checkProtectionLocked trips OVP when the output is on above the OVP
// level, and OCP when the load would draw the OCP level or more.
func (in *Instrument) checkProtectionLocked(c *channel) {
	if !in.outputOn(c) {
		return
	}
	if c.ovpOn && c.setV > c.ovp+1e-9 {
		c.tripOVP = true
		in.switchOffLocked(c)
		in.emit(c, "trip", fmt.Sprintf("OVP: setpoint %.4g V above %.4g V", c.setV, c.ovp))
		return
	}
	if c.ocpOn {
		want := c.draw
		if math.IsNaN(want) {
			want = c.setV / c.loadOhms
		}
		level := c.ocp
		if in.d.fuseAtLimit {
			level = c.setI
		}
		if want >= level-1e-12 {
			c.tripOCP = true
			in.switchOffLocked(c)
			in.emit(c, "trip", fmt.Sprintf("OCP: %.4g A at or above %.4g A", want, level))
		}
	}
}

func (in *Instrument) switchOffLocked(c *channel) {
	in.stopListLocked(c)
	c.on = false
	c.selected = c.selected && !in.d.masterSwitch
}

// setOutputLocked switches an output, records it and checks protection.
func (in *Instrument) setOutputLocked(c *channel, on bool) *scpiErr {
	if on && in.d.fuseAtLimit && c.tripOCP {
		c.tripOCP = false // switching on again resets an electronic fuse
		in.emit(c, "clear", "fuse")
	}
	if on && (c.tripOVP || c.tripOCP) {
		return fail(errSettingsConflct, "protection tripped: clear it first")
	}
	was := in.outputOn(c)
	if in.d.masterSwitch {
		c.selected = on
		if on {
			in.general = true
		}
	} else {
		c.on = on
	}
	if !on {
		in.stopListLocked(c)
	}
	if in.outputOn(c) != was {
		in.emit(c, "output", "")
	}
	in.checkProtectionLocked(c)
	return nil
}

func (in *Instrument) setVoltageLocked(c *channel, v float64, kind string) {
	if c.setV == v {
		return
	}
	c.setV = v
	in.emit(c, kind, "")
	in.checkProtectionLocked(c)
}

func (in *Instrument) setCurrentLocked(c *channel, i float64, kind string) {
	if c.setI == i {
		return
	}
	c.setI = i
	in.emit(c, kind, "")
	in.checkProtectionLocked(c)
}

// ---------------------------------------------------------------------------
// Lists and triggers.

// runList plays c's list (or CDW waveform) in time, from a goroutine.
// Called with mu held.
func (in *Instrument) runListLocked(c *channel, steps []step, count int, termLast bool) {
	in.stopListLocked(c)
	stop := make(chan struct{})
	c.stopList, c.running, c.armed = stop, true, false
	restoreV, restoreI := c.setV, c.setI
	in.wg.Add(1)
	go func() {
		defer in.wg.Done()
		next := time.Now()
		for rep := 0; count <= 0 || rep < count; rep++ {
			for k, s := range steps {
				in.mu.Lock()
				if c.stopList != stop {
					in.unlock()
					return
				}
				if s.bost {
					in.emit(c, "trigger-out", fmt.Sprintf("step %d", k+1))
				}
				c.setV, c.setI = s.v, s.i
				in.emit(c, "list-step", fmt.Sprintf("step %d", k+1))
				in.checkProtectionLocked(c)
				in.unlock()
				// Steps are timed from the list's start, not from each
				// other: the emulator's own delays do not add up.
				next = next.Add(s.dwell)
				t := time.NewTimer(time.Until(next))
				select {
				case <-stop:
					t.Stop()
					return
				case <-t.C:
				}
			}
		}
		in.mu.Lock()
		defer in.unlock()
		if c.stopList != stop {
			return
		}
		c.running, c.stopList = false, nil
		if !termLast {
			c.setV, c.setI = restoreV, restoreI
		}
		in.emit(c, "list-end", "")
	}()
}

func (in *Instrument) stopListLocked(c *channel) {
	if c.stopList != nil {
		close(c.stopList)
		c.stopList = nil
	}
	c.running = false
}

// ---------------------------------------------------------------------------
// Serving.

// ServeTCP listens on addr ("127.0.0.1:0") and serves one client at a
// time until ctx ends or Close; a second client is disconnected at once
// (as single-socket instruments do). It returns the listening address.
func (in *Instrument) ServeTCP(ctx context.Context, addr string) (net.Addr, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("emulator: %w", err)
	}
	in.connMu.Lock()
	if in.closed {
		in.connMu.Unlock()
		ln.Close()
		return nil, errors.New("emulator: closed")
	}
	in.listeners = append(in.listeners, ln)
	in.connMu.Unlock()
	in.wg.Add(1)
	go func() {
		defer in.wg.Done()
		select {
		case <-ctx.Done():
		case <-in.done:
		}
		ln.Close()
	}()
	in.wg.Add(1)
	go func() {
		defer in.wg.Done()
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			in.connMu.Lock()
			busy := in.active != nil || in.closed
			if !busy {
				in.active = conn
			}
			in.connMu.Unlock()
			if busy {
				conn.Close()
				continue
			}
			in.wg.Add(1)
			go func() {
				defer in.wg.Done()
				in.session(conn, conn)
				in.connMu.Lock()
				if in.active == conn {
					in.active = nil
				}
				in.connMu.Unlock()
				conn.Close()
			}()
		}
	}()
	return ln.Addr(), nil
}

// ServePTY serves the instrument on a pseudo-terminal, as an RS-232
// instrument, and returns the path a client opens (/dev/pts/N). The
// terminal stays until Close or ctx ends.
func (in *Instrument) ServePTY(ctx context.Context) (string, error) {
	master, slave, err := pty.Open()
	if err != nil {
		return "", fmt.Errorf("emulator: pseudo-terminal: %w", err)
	}
	// Raw, so that the line discipline neither echoes commands back nor
	// rewrites line ends before a client sets the mode.
	if _, err := term.MakeRaw(int(slave.Fd())); err != nil {
		master.Close()
		slave.Close()
		return "", fmt.Errorf("emulator: pseudo-terminal raw mode: %w", err)
	}
	path := slave.Name()
	in.connMu.Lock()
	in.listeners = append(in.listeners, master, slave)
	in.connMu.Unlock()
	in.wg.Add(1)
	go func() {
		defer in.wg.Done()
		select {
		case <-ctx.Done():
		case <-in.done:
		}
		master.Close()
		slave.Close()
	}()
	in.wg.Add(1)
	go func() {
		defer in.wg.Done()
		in.session(master, master)
	}()
	return path, nil
}

// maxLine bounds one program message (an N67xx CDW waveform of 65,535
// points is about 650 KB).
const maxLine = 4 << 20

// session reads program messages from r and answers on w until r ends.
func (in *Instrument) session(r io.Reader, w io.Writer) {
	br := bufio.NewReaderSize(r, 64<<10)
	for {
		line, err := readMessage(br)
		if err != nil {
			return
		}
		in.connMu.Lock()
		drop := false
		if in.dropAfter > 0 {
			in.dropAfter--
			drop = in.dropAfter == 0
		}
		c := in.active
		in.connMu.Unlock()
		if drop {
			if c != nil {
				c.Close()
			}
			return
		}
		if d := in.delay(); d > 0 {
			time.Sleep(d)
		}
		if mi := in.d.minInterval; mi > 0 && strings.Contains(line, "?") {
			in.connMu.Lock()
			early := time.Since(in.lastAnswer) < mi
			in.connMu.Unlock()
			if early {
				continue // still busy with the last answer: this query is lost
			}
		}
		answers := in.Execute(line)
		if len(answers) > 0 {
			// Busy from the answer on: stamped before it is written, so
			// that a client never has it before the instrument knows it
			// gave it (a goroutine descheduled after the write would
			// otherwise lose the client's next, well-paced query).
			in.connMu.Lock()
			in.lastAnswer = time.Now()
			in.connMu.Unlock()
			if _, err := io.WriteString(w, strings.Join(answers, ";")+"\n"); err != nil {
				return
			}
		}
	}
}

func (in *Instrument) delay() time.Duration {
	d := in.cfg.Latency
	if in.cfg.Jitter > 0 {
		in.mu.Lock()
		d += time.Duration(in.rng.Int64N(int64(in.cfg.Jitter)))
		in.mu.Unlock()
	}
	return d
}

// readMessage reads one line (without "\n" or "\r\n"), refusing one longer
// than maxLine (it is skipped and reported as an empty message).
func readMessage(br *bufio.Reader) (string, error) {
	var buf []byte
	for {
		frag, err := br.ReadSlice('\n')
		if len(buf)+len(frag) <= maxLine {
			buf = append(buf, frag...)
		} else {
			buf = buf[:0:0]
			buf = append(buf, "*OVERFLOW"...)
		}
		if err == nil {
			break
		}
		if errors.Is(err, bufio.ErrBufferFull) {
			continue
		}
		return "", err
	}
	return strings.TrimRight(string(buf), "\r\n"), nil
}

// Execute carries out one program message as if it came over the wire and
// returns the answers of its queries (one per query answered).
func (in *Instrument) Execute(line string) []string {
	in.mu.Lock()
	defer in.unlock()
	if line == "*OVERFLOW" {
		in.pushErr(&scpiErr{code: errTooMuchData, detail: "message too long"})
		return nil
	}
	units, err := parseMessage(line)
	if err != nil {
		in.pushErr(fail(errCommand, "%v", err))
		return nil
	}
	var answers []string
	var path []string // the compound header path
	for _, u := range units {
		toks := strings.Split(strings.ToUpper(u.header), ":")
		common := strings.HasPrefix(u.header, "*")
		full := toks
		if !u.root && !common && len(path) > 0 {
			full = append(append([]string(nil), path...), toks...)
		}
		e, suffixes := in.d.lookup(full, u.query)
		if e == nil {
			// An unknown query is not answered: the client sees only its
			// timeout, then the error queue says why.
			in.pushErr(fail(errUndefinedHeader, "%s%s", u.header, map[bool]string{true: "?"}[u.query]))
			continue
		}
		if !common {
			path = full[:len(full)-1]
		}
		ans, serr := e.fn(in, &call{params: u.params, suffix: suffixes, query: u.query})
		if serr != nil {
			in.pushErr(serr)
			continue
		}
		if u.query {
			answers = append(answers, ans)
		}
	}
	return answers
}

// queueSize is the error queue's depth (the last entry becomes -350 when
// it overflows, as the standard says).
const queueSize = 20

func (in *Instrument) pushErr(e *scpiErr) {
	if len(in.queue) >= queueSize {
		in.queue[queueSize-1] = errEntry{errQueueOverflow, errMessages[errQueueOverflow]}
		return
	}
	in.queue = append(in.queue, errEntry{e.code, e.message()})
}

func (in *Instrument) popErr() errEntry {
	if len(in.queue) == 0 {
		return errEntry{0, "No error"}
	}
	e := in.queue[0]
	in.queue = in.queue[1:]
	return e
}

// ---------------------------------------------------------------------------
// Timeline files.

// ReadTimeline reads a timeline written by an emulator (JSON Lines), at
// most maxEvents events.
func ReadTimeline(r io.Reader, maxEvents int) ([]Event, error) {
	var out []Event
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 4096), 1<<16)
	line := 0
	for sc.Scan() {
		line++
		if strings.TrimSpace(sc.Text()) == "" {
			continue
		}
		if len(out) == maxEvents {
			return out, fmt.Errorf("timeline: more than %d events", maxEvents)
		}
		var e Event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil {
			return out, fmt.Errorf("timeline line %d: %w", line, err)
		}
		out = append(out, e)
	}
	if err := sc.Err(); err != nil {
		return out, fmt.Errorf("timeline line %d: %w", line+1, err)
	}
	return out, nil
}

// ReadTimelineFile reads a timeline file.
func ReadTimelineFile(path string) ([]Event, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	ev, err := ReadTimeline(f, 1<<20)
	if err != nil {
		return ev, fmt.Errorf("%s: %w", path, err)
	}
	return ev, nil
}

// Dialects lists the emulated dialects.
func Dialects() []string {
	var out []string
	for _, mk := range dialects {
		out = append(out, mk().name)
	}
	sort.Strings(out)
	return out
}
