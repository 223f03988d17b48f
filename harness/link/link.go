// Package link is the host end of the serial line to a board: a transport
// on go.bug.st/serial, and on top of it a reliable command channel of the
// wire protocol (firmware/PROTOCOL.md).
//
//   - Commands are acknowledged by the board; the link retransmits a command
//     whose answer does not come within the retransmission timeout (RTO, one
//     timer on the oldest unanswered command, doubling at each expiry), or at
//     once when a later command's answer shows it was lost; up to Retries
//     timeouts while the port is up. The board de-duplicates.
//   - DEPLOY_CHUNK, SET_INPUT and reads are pipelined with a sliding window
//     of up to Window outstanding commands (selective repeat), which keeps a
//     115200-baud line about 94 % busy with image bytes.
//   - Board events (BOOT, TASK_DONE, COMMIT, RESULT, LOG) arrive on Events in
//     order, each with the number of events lost before it (a gap of the
//     board's event sequence).
//   - A port that vanishes (a USB adapter unplugged) is reported on Events
//     as PortLost, reopened every Reopen interval at the same path, and
//     reported as PortBack; commands in flight wait meanwhile (their retry
//     count does not run down) and are retransmitted once it is back.
//
// Every call takes a context; Close ends the one goroutine the link runs.
package link

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/batteryless/harness/harness/wire"
	"go.bug.st/serial"
)

// Transport is the byte line to a board. Read may return 0 bytes and no
// error when its read timeout expires.
type Transport interface {
	Read(p []byte) (int, error)
	Write(p []byte) (int, error)
	Close() error
}

// OpenSerial opens a serial port (8N1, no flow control) at a baud rate,
// with a read timeout.
func OpenSerial(path string, baud int, readTimeout time.Duration) (Transport, error) {
	p, err := serial.Open(path, &serial.Mode{BaudRate: baud, DataBits: 8, Parity: serial.NoParity, StopBits: serial.OneStopBit})
	if err != nil {
		return nil, fmt.Errorf("link: open %s: %w", path, err)
	}
	if err := p.SetReadTimeout(readTimeout); err != nil {
		p.Close()
		return nil, fmt.Errorf("link: %s: read timeout: %w", path, err)
	}
	return p, nil
}

// Config of a link. Zero fields take the defaults.
type Config struct {
	Path    string        // the serial port, e.g. /dev/ttyUSB0 or a /dev/pts path
	Baud    int           // default 115200
	Window  int           // outstanding pipelined commands, 1..8 (less if the board's IDENTITY says so); default 8
	RTO     time.Duration // retransmission timeout; default (Window+2) frame times + 50 ms
	Retries int           // retransmissions of one command while the port is up; default 10
	// Patience is the longest a command waits for its answer from its
	// first transmission (plus its own extra time), whatever its retries;
	// default 100 frame times at Baud, at least 20 s (a board answers
	// between tasks: a long task delays its answer) and at most 30 s (a
	// board at 9600 baud is given its time, a dead one is named soon).
	Patience    time.Duration
	ReadTimeout time.Duration // of each read of the port; default 20 ms
	Reopen      time.Duration // between attempts to reopen a lost port; default 200 ms
	EventBuffer int           // events held for the reader of Events; default 1024

	// Open opens the transport; default OpenSerial.
	Open func(path string, baud int, readTimeout time.Duration) (Transport, error)
}

// MaxWindow is the largest window (PROTOCOL.md): a board's de-duplication
// history remembers twice as many commands.
const MaxWindow = 8

func (c Config) withDefaults() (Config, error) {
	if c.Path == "" {
		return c, errors.New("link: no port path")
	}
	if c.Baud < 0 {
		return c, fmt.Errorf("link: baud rate %d: want a positive rate", c.Baud)
	}
	if c.Baud == 0 {
		c.Baud = 115200
	}
	if c.Window <= 0 {
		c.Window = MaxWindow
	}
	if c.Window > MaxWindow {
		return c, fmt.Errorf("link: window %d, at most %d (a board's de-duplication history holds twice that)", c.Window, MaxWindow)
	}
	if c.RTO <= 0 {
		c.RTO = time.Duration(c.Window+2)*FrameTime(c.Baud) + 50*time.Millisecond
	}
	if c.Retries <= 0 {
		c.Retries = 10
	}
	if c.Patience <= 0 {
		c.Patience = min(max(100*FrameTime(c.Baud), 20*time.Second), 30*time.Second)
	}
	if c.ReadTimeout <= 0 {
		c.ReadTimeout = 20 * time.Millisecond
	}
	if c.Reopen <= 0 {
		c.Reopen = 200 * time.Millisecond
	}
	if c.EventBuffer <= 0 {
		c.EventBuffer = 1024
	}
	if c.Open == nil {
		c.Open = OpenSerial
	}
	return c, nil
}

// FrameTime is the time a frame of the largest size (wire.MaxWire bytes,
// 10 bits each with start and stop bits) takes on a line.
func FrameTime(baud int) time.Duration {
	return time.Duration(int64(wire.MaxWire) * 10 * int64(time.Second) / int64(baud))
}

// commitTimePerByte is the time a board may take per image byte to check
// the CRC of a DEPLOY_COMMIT, on top of the RTO (PROTOCOL.md).
const commitTimePerByte = 4 * time.Microsecond

// EventKind says what an Event is.
type EventKind int

// Event kinds.
const (
	BoardEvent EventKind = iota // a frame of the board: Msg is *wire.Boot, *wire.TaskDone, *wire.Commit, *wire.Result, *wire.Log or *wire.Unknown
	PortLost                    // the port failed (Err); the link reopens it
	PortBack                    // the port is open again
)

func (k EventKind) String() string {
	return [...]string{"board", "port-lost", "port-back"}[k]
}

// Event is something that happened on the line.
type Event struct {
	Kind EventKind
	Time time.Time
	Seq  uint16       // BoardEvent: the board's event sequence
	Msg  wire.Message // BoardEvent
	// Missed counts the board events lost just before this one (a gap of
	// the event sequence, or events this side dropped because Events was
	// full). Rebooted: the sequence went back without a BOOT, so the board
	// rebooted and its BOOT was lost too (Missed then counts the events of
	// the new boot before this one, BOOT included).
	Missed   int
	Rebooted bool
	Err      error // PortLost
}

// Stats counts what happened on a link.
type Stats struct {
	FramesSent      int64 // command frames written, retransmissions included
	Retransmissions int64
	BytesReceived   int64 // bytes read from the port
	FramesReceived  int64 // frames decoded (valid or not understood)
	BadFrames       int64 // frames dropped: COBS, length, CRC
	Unknown         int64 // frames of an unknown version or type, or not understood
	StrayResponses  int64 // answers to no outstanding command (late answers to retransmissions)
	EventsMissed    int64 // board events lost (sum of Event.Missed)
	EventsDropped   int64 // events dropped because Events was full
	PortLosses      int64
}

// ErrClosed is returned by the calls of a closed link.
var ErrClosed = errors.New("link: closed")

// ErrTimeout is wrapped by a CommandError when a command got no answer.
var ErrTimeout = errors.New("no answer")

// CommandError is a command that failed: no answer after its retries
// (Err is ErrTimeout) or an ACK with an error status.
type CommandError struct {
	Cmd    wire.Type
	Seq    uint16
	Tries  int         // transmissions while the port was up
	Status wire.Status // when the board answered with an error status
	Detail uint32
	Err    error
}

func (e *CommandError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("link: %v seq %d: %v after %d transmissions", e.Cmd, e.Seq, e.Err, e.Tries)
	}
	return fmt.Sprintf("link: %v seq %d: board answered %v (detail 0x%08x)", e.Cmd, e.Seq, e.Status, e.Detail)
}

func (e *CommandError) Unwrap() error { return e.Err }

type response struct {
	seq uint16
	msg wire.Message
}

// Link is an open line to a board.
type Link struct {
	cfg    Config
	ctx    context.Context
	cancel context.CancelFunc
	done   chan struct{}

	mu       sync.Mutex
	port     Transport     // nil while the port is lost
	stateCh  chan struct{} // closed and replaced at every change of port
	pending  map[uint16]chan<- response
	writeErr error // a write that failed on the current port
	seq      uint16
	ident    *wire.Identity

	wmu sync.Mutex    // one writer at a time
	cmd chan struct{} // one command stream at a time

	events chan Event
	evLast uint16 // reader goroutine only
	evHave bool

	st struct {
		sent, retrans, bad, unknown, stray, missed, dropped, losses, rxBytes, rxFrames atomic.Int64
	}
}

// Open opens the port and starts the link. The link runs until Close or
// until ctx is done.
func Open(ctx context.Context, cfg Config) (*Link, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	p, err := cfg.Open(cfg.Path, cfg.Baud, cfg.ReadTimeout)
	if err != nil {
		return nil, err
	}
	lctx, cancel := context.WithCancel(ctx)
	l := &Link{
		cfg: cfg, ctx: lctx, cancel: cancel, done: make(chan struct{}),
		port: p, stateCh: make(chan struct{}), pending: map[uint16]chan<- response{},
		seq: uint16(rand.N(1 << 16)), cmd: make(chan struct{}, 1),
		events: make(chan Event, cfg.EventBuffer),
	}
	l.flush(p)
	go l.run(p)
	return l, nil
}

// Close stops the link and closes the port; it waits for the link's
// goroutine. Events is closed after it.
func (l *Link) Close() error {
	l.cancel()
	l.mu.Lock()
	if l.port != nil {
		l.port.Close() // unblocks a pending read
	}
	l.mu.Unlock()
	<-l.done
	return nil
}

// Events delivers board events and port changes in order. It is closed
// when the link is. When nobody reads it, events beyond EventBuffer are
// dropped (and counted in Missed of the next board event delivered).
func (l *Link) Events() <-chan Event { return l.events }

// Stats returns the counters.
func (l *Link) Stats() Stats {
	return Stats{
		FramesSent: l.st.sent.Load(), Retransmissions: l.st.retrans.Load(), BadFrames: l.st.bad.Load(),
		BytesReceived: l.st.rxBytes.Load(), FramesReceived: l.st.rxFrames.Load(),
		Unknown: l.st.unknown.Load(), StrayResponses: l.st.stray.Load(), EventsMissed: l.st.missed.Load(),
		EventsDropped: l.st.dropped.Load(), PortLosses: l.st.losses.Load(),
	}
}

// Up reports whether the port is open.
func (l *Link) Up() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.port != nil
}

// Identity is the board's answer to the last Hello, nil before.
func (l *Link) Identity() *wire.Identity {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ident
}

// state is whether the port is up, and a channel closed at its next change.
func (l *Link) state() (bool, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.port != nil, l.stateCh
}

func (l *Link) setPort(p Transport) {
	l.mu.Lock()
	l.port = p
	close(l.stateCh)
	l.stateCh = make(chan struct{})
	l.mu.Unlock()
}

// flush writes a lone delimiter: the board drops whatever partial frame
// line noise left in its receiver.
func (l *Link) flush(p Transport) {
	l.wmu.Lock()
	p.Write([]byte{0})
	l.wmu.Unlock()
}

// run reads the port; when it fails, reports the loss and reopens it.
func (l *Link) run(p Transport) {
	defer close(l.done)
	defer close(l.events)
	var dec wire.Decoder
	buf := make([]byte, 512)
	for {
		err := l.readLoop(p, &dec, buf)
		p.Close()
		l.mu.Lock()
		if l.writeErr != nil {
			err, l.writeErr = l.writeErr, nil // the first failure: a write's
		}
		l.mu.Unlock()
		l.setPort(nil)
		if l.ctx.Err() != nil {
			return
		}
		l.st.losses.Add(1)
		l.emit(Event{Kind: PortLost, Time: time.Now(), Err: fmt.Errorf("link: %s lost: %w", l.cfg.Path, err)})
		t := time.NewTicker(l.cfg.Reopen)
		for p = nil; p == nil; {
			select {
			case <-l.ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			if q, err := l.cfg.Open(l.cfg.Path, l.cfg.Baud, l.cfg.ReadTimeout); err == nil {
				p = q
			}
		}
		t.Stop()
		dec.Reset()
		l.flush(p)
		l.mu.Lock()
		if l.ctx.Err() != nil {
			// Closed meanwhile: Close saw no port to close.
			l.mu.Unlock()
			p.Close()
			return
		}
		l.port = p
		close(l.stateCh)
		l.stateCh = make(chan struct{})
		l.mu.Unlock()
		l.emit(Event{Kind: PortBack, Time: time.Now()})
	}
}

// readLoop reads frames until the port fails or the link closes.
func (l *Link) readLoop(p Transport, dec *wire.Decoder, buf []byte) error {
	for {
		if l.ctx.Err() != nil {
			return nil
		}
		n, err := p.Read(buf)
		if n > 0 {
			l.st.rxBytes.Add(int64(n))
		}
		for b := buf[:max(n, 0)]; len(b) > 0; {
			k, f, ferr := dec.Feed(b)
			b = b[k:]
			if ferr != nil {
				l.st.bad.Add(1)
			} else if f != nil {
				l.st.rxFrames.Add(1)
				l.handle(f)
			}
		}
		if err != nil {
			return err
		}
	}
}

// handle dispatches one decoded frame.
func (l *Link) handle(f []byte) {
	h, m, err := wire.Unmarshal(f)
	if err != nil {
		var we *wire.Error
		if errors.As(err, &we) && we.Kind == wire.KindType && h.Type.IsEvent() {
			// An event of a newer firmware: deliver it, its sequence counts.
			l.boardEvent(h, m)
			return
		}
		l.st.unknown.Add(1)
		return
	}
	switch {
	case h.Type.IsResponse():
		l.mu.Lock()
		ch := l.pending[h.Seq]
		l.mu.Unlock()
		if ch == nil {
			l.st.stray.Add(1)
			return
		}
		select {
		case ch <- response{h.Seq, m}:
		default:
			l.st.stray.Add(1)
		}
	case h.Type.IsEvent():
		l.boardEvent(h, m)
	default:
		l.st.unknown.Add(1) // a command from the board's side: an echo?
	}
}

// boardEvent delivers an event with gap detection.
func (l *Link) boardEvent(h wire.Header, m wire.Message) {
	ev := Event{Kind: BoardEvent, Time: time.Now(), Seq: h.Seq, Msg: m}
	switch {
	case h.Type == wire.TypeBoot && h.Seq == 0:
		// A new boot: its sequence starts over.
	case !l.evHave:
	default:
		d := h.Seq - (l.evLast + 1)
		switch {
		case d == 0:
		case d < 0x8000:
			ev.Missed = int(d)
		default:
			ev.Missed, ev.Rebooted = int(h.Seq), true
		}
	}
	select {
	case l.events <- ev:
		l.evHave, l.evLast = true, h.Seq
		l.st.missed.Add(int64(ev.Missed))
	default:
		l.st.dropped.Add(1)
	}
}

func (l *Link) emit(ev Event) {
	select {
	case l.events <- ev:
	default:
		l.st.dropped.Add(1)
	}
}

// transmit writes a command's frame if the port is up, and says whether.
func (l *Link) transmit(o *outstanding) bool {
	now := time.Now()
	o.deadline = now.Add(l.rto(o))
	if !o.firstSent.IsZero() {
		// The retries end with the command's patience, not after it.
		if end := o.firstSent.Add(l.cfg.Patience + o.extra); end.Before(o.deadline) {
			o.deadline = end
		}
	}
	l.wmu.Lock()
	defer l.wmu.Unlock()
	l.mu.Lock()
	p := l.port
	l.mu.Unlock()
	if p == nil {
		return false
	}
	frame := o.frame
	if o.tries > 0 {
		// A retransmission: a delimiter first, in case line noise left a
		// partial frame in the board's receiver.
		frame = o.again
		if frame == nil {
			o.again = append([]byte{0}, o.frame...)
			frame = o.again
		}
	}
	o.tries++
	if o.firstSent.IsZero() {
		o.firstSent = now
	}
	o.lastSent = now
	l.st.sent.Add(1)
	if _, err := p.Write(frame); err != nil {
		// The reader sees the failure too; closing makes sure it does.
		l.mu.Lock()
		if l.port == p && l.writeErr == nil {
			l.writeErr = err
		}
		l.mu.Unlock()
		p.Close()
	}
	return true
}

// rto is a command's retransmission timeout: the RTO, doubled at each
// expiry up to 8 times it (a board that is only slow, or a host that is
// starved of CPU, is not flooded), plus the command's own extra time.
func (l *Link) rto(o *outstanding) time.Duration {
	return l.cfg.RTO<<min(o.timeouts, 3) + o.extra
}

type outstanding struct {
	i         int
	seq       uint16
	typ       wire.Type
	frame     []byte // on the wire
	again     []byte // the same after a 0x00, for retransmissions
	extra     time.Duration
	firstSent time.Time // first and last transmission while the port was up
	lastSent  time.Time
	deadline  time.Time
	tries     int // transmissions while up
	timeouts  int // expiries of its timer
}

func (l *Link) acquire(ctx context.Context) error {
	select {
	case l.cmd <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-l.ctx.Done():
		return ErrClosed
	}
}

func (l *Link) release() { <-l.cmd }

// register takes the next free sequence number for a command.
func (l *Link) register(ch chan<- response) uint16 {
	l.mu.Lock()
	defer l.mu.Unlock()
	for {
		l.seq++
		if _, used := l.pending[l.seq]; !used {
			l.pending[l.seq] = ch
			return l.seq
		}
	}
}

func (l *Link) unregister(seq uint16) {
	l.mu.Lock()
	delete(l.pending, seq)
	l.mu.Unlock()
}

// answers reports whether m answers a command of type t.
func answers(t wire.Type, m wire.Message) bool {
	switch m := m.(type) {
	case *wire.Ack:
		return m.Cmd == t
	case *wire.Identity:
		return t == wire.TypeHello
	case *wire.Data:
		return t == wire.TypeReadOutput || t == wire.TypeReadNVM
	}
	return false
}

// pipeline runs n commands, at most window outstanding: build(i) gives
// command i and the extra time its answer may take; done(i, answer) takes
// each answer. An ACK with an error status ends it with a CommandError.
//
// Retransmission (PROTOCOL.md, section 4): one timer runs, on the oldest
// unanswered command, restarted whenever the oldest is answered; when it
// expires that command alone is sent again (the others wait behind it on
// the line). An answer to a command proves that every command sent before
// its first transmission and still unanswered was lost, or its answer was:
// those are sent again at once (fast retransmission).
func (l *Link) pipeline(ctx context.Context, n, window int, build func(int) (wire.Message, time.Duration), done func(int, wire.Message) error) error {
	if err := l.acquire(ctx); err != nil {
		return err
	}
	defer l.release()
	respCh := make(chan response, 2*window+2)
	out := map[uint16]*outstanding{}
	defer func() {
		for seq := range out {
			l.unregister(seq)
		}
	}()
	var oldest uint16 // seq of the oldest outstanding command
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	next := 0
	answer := func(r response) error {
		o := out[r.seq]
		if o == nil || !answers(o.typ, r.msg) {
			l.st.stray.Add(1)
			return nil
		}
		delete(out, r.seq)
		l.unregister(r.seq)
		if len(out) > 0 {
			list := ordered(out)
			for _, p := range list {
				if int16(p.seq-o.seq) < 0 && !p.lastSent.IsZero() && !o.firstSent.IsZero() && p.lastSent.Before(o.firstSent) {
					l.st.retrans.Add(1)
					l.transmit(p)
				}
			}
			if list[0].seq != oldest {
				// A new oldest: its timer starts now.
				oldest = list[0].seq
				list[0].deadline = later(list[0].deadline, time.Now().Add(l.rto(list[0])))
			}
		}
		if a, ok := r.msg.(*wire.Ack); ok && a.Status != wire.StatusOK {
			return &CommandError{Cmd: o.typ, Seq: o.seq, Tries: o.tries, Status: a.Status, Detail: a.Detail}
		}
		return done(o.i, r.msg)
	}
	for next < n || len(out) > 0 {
		// Fill the window: sequence numbers within window of the oldest
		// unanswered one.
		for next < n && len(out) < window {
			if len(out) > 0 {
				l.mu.Lock()
				ahead := l.seq + 1 - oldest
				l.mu.Unlock()
				if int(ahead) >= window {
					break
				}
			}
			m, extra := build(next)
			seq := l.register(respCh)
			frame, err := wire.Encode(seq, m)
			if err != nil {
				l.unregister(seq)
				return fmt.Errorf("link: command %d: %w", next, err)
			}
			o := &outstanding{i: next, seq: seq, typ: m.Type(), frame: frame, extra: extra}
			if len(out) == 0 {
				oldest = seq
			}
			out[seq] = o
			l.transmit(o)
			next++
		}
		up, changed := l.state()
		var tc <-chan time.Time
		if up && len(out) > 0 {
			timer.Reset(time.Until(out[oldest].deadline))
			tc = timer.C
		}
		select {
		case r := <-respCh:
			if err := answer(r); err != nil {
				return err
			}
		case <-tc:
			// Answers that arrived meanwhile count first.
			for drained := false; !drained; {
				select {
				case r := <-respCh:
					if err := answer(r); err != nil {
						return err
					}
				default:
					drained = true
				}
			}
			o := out[oldest]
			if o == nil || o.deadline.After(time.Now()) {
				continue
			}
			if o.timeouts >= l.cfg.Retries || (!o.firstSent.IsZero() && time.Since(o.firstSent) >= l.cfg.Patience+o.extra) {
				return &CommandError{Cmd: o.typ, Seq: o.seq, Tries: o.tries, Err: ErrTimeout}
			}
			o.timeouts++
			if l.transmit(o) {
				l.st.retrans.Add(1)
			} else {
				o.timeouts-- // the port went away meanwhile
			}
		case <-changed:
			if up, _ := l.state(); up {
				// Back: send everything outstanding again, in order.
				for _, o := range ordered(out) {
					l.transmit(o)
				}
			}
		case <-ctx.Done():
			return ctx.Err()
		case <-l.ctx.Done():
			return ErrClosed
		}
		timer.Stop()
	}
	return nil
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// ordered lists the outstanding commands by sequence number (they are
// within a window of each other, so the 16-bit difference orders them).
func ordered(out map[uint16]*outstanding) []*outstanding {
	list := make([]*outstanding, 0, len(out))
	for _, o := range out {
		list = append(list, o)
	}
	slices.SortFunc(list, func(a, b *outstanding) int { return int(int16(a.seq - b.seq)) })
	return list
}

// Do sends one command and returns its answer (an *wire.Ack with status OK,
// an *wire.Identity or a *wire.Data).
func (l *Link) Do(ctx context.Context, m wire.Message) (wire.Message, error) {
	var answer wire.Message
	var extra time.Duration
	if c, ok := m.(*wire.DeployCommit); ok {
		extra = time.Duration(c.Length) * commitTimePerByte
	}
	err := l.pipeline(ctx, 1, 1, func(int) (wire.Message, time.Duration) { return m, extra },
		func(_ int, a wire.Message) error { answer = a; return nil })
	return answer, err
}

// Hello asks the board who it is.
func (l *Link) Hello(ctx context.Context) (*wire.Identity, error) {
	a, err := l.Do(ctx, &wire.Hello{})
	if err != nil {
		return nil, err
	}
	id := a.(*wire.Identity)
	l.mu.Lock()
	l.ident = id
	l.mu.Unlock()
	return id, nil
}

// window is the configured window, or less when the board said so.
func (l *Link) window() int {
	w := l.cfg.Window
	if id := l.Identity(); id != nil && id.Window > 0 && int(id.Window) < w {
		w = int(id.Window)
	}
	return w
}

// writeChunks sends data in DEPLOY_CHUNK or SET_INPUT commands.
func (l *Link) writeChunks(ctx context.Context, data []byte, mk func(off uint32, b []byte) wire.Message) error {
	n := (len(data) + wire.MaxData - 1) / wire.MaxData
	return l.pipeline(ctx, n, l.window(), func(i int) (wire.Message, time.Duration) {
		lo := i * wire.MaxData
		return mk(uint32(lo), data[lo:min(lo+wire.MaxData, len(data))]), 0
	}, func(int, wire.Message) error { return nil })
}

// Deploy transfers a plan image: DEPLOY_CHUNKs through the window, then
// DEPLOY_COMMIT with the image's length and CRC-32.
func (l *Link) Deploy(ctx context.Context, image []byte) error {
	if len(image) == 0 {
		return errors.New("link: deploy: empty image")
	}
	if id := l.Identity(); id != nil && uint64(len(image)) > uint64(id.ImageBytes) {
		return fmt.Errorf("link: deploy: image of %d bytes, %s holds %d", len(image), id.Name, id.ImageBytes)
	}
	err := l.writeChunks(ctx, image, func(off uint32, b []byte) wire.Message { return &wire.DeployChunk{Offset: off, Data: b} })
	if err != nil {
		return err
	}
	_, err = l.Do(ctx, &wire.DeployCommit{Length: uint32(len(image)), CRC: wire.Checksum(image)})
	return err
}

// SetInput writes the input tensor.
func (l *Link) SetInput(ctx context.Context, input []byte) error {
	if len(input) == 0 {
		return errors.New("link: set input: empty input")
	}
	return l.writeChunks(ctx, input, func(off uint32, b []byte) wire.Message { return &wire.SetInput{Offset: off, Data: b} })
}

// Start begins inference number n.
func (l *Link) Start(ctx context.Context, n uint32) error {
	_, err := l.Do(ctx, &wire.Start{Inference: n})
	return err
}

// ResetCounters zeroes the board's boot and receive error counts.
func (l *Link) ResetCounters(ctx context.Context) error {
	_, err := l.Do(ctx, &wire.ResetCounters{})
	return err
}

// read reads n bytes at off with READ_OUTPUT or READ_NVM commands.
func (l *Link) read(ctx context.Context, off uint32, n int, mk func(off uint32, n uint16) wire.Message) ([]byte, error) {
	if n <= 0 {
		return nil, nil
	}
	out := make([]byte, n)
	count := (n + wire.MaxData - 1) / wire.MaxData
	err := l.pipeline(ctx, count, l.window(), func(i int) (wire.Message, time.Duration) {
		lo := i * wire.MaxData
		return mk(off+uint32(lo), uint16(min(wire.MaxData, n-lo))), 0
	}, func(i int, a wire.Message) error {
		d := a.(*wire.Data)
		lo := i * wire.MaxData
		want := min(wire.MaxData, n-lo)
		if d.Offset != off+uint32(lo) || len(d.Data) != want {
			return fmt.Errorf("link: DATA at offset %d with %d bytes answers a read of %d bytes at %d", d.Offset, len(d.Data), want, off+uint32(lo))
		}
		copy(out[lo:], d.Data)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ReadOutput reads n bytes of the output tensor at off.
func (l *Link) ReadOutput(ctx context.Context, off uint32, n int) ([]byte, error) {
	return l.read(ctx, off, n, func(o uint32, k uint16) wire.Message { return &wire.ReadOutput{Offset: o, Length: k} })
}

// ReadNVM reads n bytes of NVM at off.
func (l *Link) ReadNVM(ctx context.Context, off uint32, n int) ([]byte, error) {
	return l.read(ctx, off, n, func(o uint32, k uint16) wire.Message { return &wire.ReadNVM{Offset: o, Length: k} })
}
