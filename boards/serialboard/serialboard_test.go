package serialboard_test

// The driver's fault tests (the issue: "faults handled and tested: the pty
// vanishing mid-run, garbage and half frames on the line, a board that stops
// answering ... each gives a logged, named failure or a recovery, never a
// hang or a lost result"). Each runs the driver over harness/link and a
// pseudo-terminal against harness/link/linktest's board, which behaves like
// the firmware, with a context deadline: a test that hangs fails instead.

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/batteryless/harness/boards/serialboard"
	"github.com/batteryless/harness/harness/link"
	"github.com/batteryless/harness/harness/link/linktest"
	"github.com/batteryless/harness/harness/wire"
)

func ctxT(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// power is the test's Power strategy: a board on steady power whose Cycle
// power-cycles the fake board. It counts holds and cycles.
type power struct {
	fb *linktest.Board
	t0 time.Time

	mu           sync.Mutex
	holds, peak  int
	holdsTotal   int
	cycles       int
	heldOnReturn int
}

func (p *power) Hold(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.holds++
	p.holdsTotal++
	p.peak = max(p.peak, p.holds)
	return nil
}

func (p *power) Release() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.holds--
}

func (p *power) Cycle(ctx context.Context) error {
	p.mu.Lock()
	p.cycles++
	p.mu.Unlock()
	p.fb.PowerCycle()
	return nil
}

func (p *power) On() bool       { return true }
func (p *power) Now() float64   { return time.Since(p.t0).Seconds() }
func (p *power) held() int      { p.mu.Lock(); defer p.mu.Unlock(); return p.holds }
func (p *power) nCycles() int   { p.mu.Lock(); defer p.mu.Unlock(); return p.cycles }
func (p *power) nHoldsAll() int { p.mu.Lock(); defer p.mu.Unlock(); return p.holdsTotal }

// logLines collects the driver's log.
type logLines struct {
	t  *testing.T
	mu sync.Mutex
	l  []string
}

func (g *logLines) logf(format string, args ...any) {
	s := fmt.Sprintf(format, args...)
	g.mu.Lock()
	g.l = append(g.l, s)
	g.mu.Unlock()
	g.t.Log(s)
}

func (g *logLines) has(sub string) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, s := range g.l {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// rig is a fake board behind a pty, a link to it and the driver.
type rig struct {
	fb    *linktest.Board
	mu    sync.Mutex
	port  *linktest.Port // the board's pty, replaced when plugged in again
	path  string         // the port's path (a symlink when the port may vanish)
	l     *link.Link
	brd   *serialboard.Board
	pw    *power
	log   *logLines
	fcfg  linktest.Config
	input []byte
}

type rigOpts struct {
	board   linktest.Config
	driver  serialboard.Config
	link    link.Config
	symlink bool // the port is a symlink that can vanish and come back
}

func newRig(t *testing.T, o rigOpts) *rig {
	t.Helper()
	r := &rig{}
	r.start(t, o)
	return r
}

// start sets up a rig allocated beforehand (for hooks that use it).
func (r *rig) start(t *testing.T, o rigOpts) {
	t.Helper()
	if o.board.Tasks == 0 {
		o.board.Tasks = 24
	}
	if o.board.InputBytes == 0 {
		o.board.InputBytes = 490 // three SET_INPUTs
	}
	if o.board.OutputBytes == 0 {
		o.board.OutputBytes = 300 // two READ_OUTPUTs
	}
	if o.board.TaskTime == 0 {
		o.board.TaskTime = 3 * time.Millisecond
	}
	r.fcfg, r.log = o.board, &logLines{t: t}
	r.fb = linktest.New(o.board)
	t.Cleanup(r.fb.Close)
	at := ""
	if o.symlink {
		at = filepath.Join(t.TempDir(), "ttyBOARD")
	}
	port := linktest.AttachT(t, r.fb, at)
	r.setPort(port)
	r.path = port.Path
	o.link.Path = port.Path
	if o.link.RTO == 0 {
		o.link.RTO = 100 * time.Millisecond
	}
	if o.link.Reopen == 0 {
		o.link.Reopen = 50 * time.Millisecond
	}
	var err error
	r.l, err = link.Open(context.Background(), o.link)
	if err != nil {
		t.Fatal(err)
	}
	o.driver.Tasks, o.driver.OutputBytes = o.board.Tasks, o.board.OutputBytes
	o.driver.Logf = r.log.logf
	r.brd = serialboard.New(r.l, o.driver)
	r.pw = &power{fb: r.fb, t0: time.Now()}
	t.Cleanup(func() {
		r.l.Close()
		r.unplug()
	})
	rnd := rand.New(rand.NewPCG(uint64(o.board.Tasks), 1))
	r.input = make([]byte, o.board.InputBytes)
	for i := range r.input {
		r.input[i] = byte(rnd.Uint32())
	}
}

func (r *rig) setPort(p *linktest.Port) {
	r.mu.Lock()
	r.port = p
	r.mu.Unlock()
}

// unplug closes the board's port (from any goroutine).
func (r *rig) unplug() {
	r.mu.Lock()
	p := r.port
	r.mu.Unlock()
	p.Close()
}

// events collects what the driver passed to its observer.
type events struct {
	mu  sync.Mutex
	evs []link.Event
	ch  chan link.Event // each event too, if set (never blocks)
}

func (e *events) observe(ev link.Event) {
	e.mu.Lock()
	e.evs = append(e.evs, ev)
	e.mu.Unlock()
	if e.ch != nil {
		select {
		case e.ch <- ev:
		default:
		}
	}
}

func (e *events) count(kind link.EventKind, typ wire.Type) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	n := 0
	for _, ev := range e.evs {
		if ev.Kind == kind && (kind != link.BoardEvent || ev.Msg.Type() == typ) {
			n++
		}
	}
	return n
}

// infer runs inference n and checks what every run must: Infer returned
// with no Power hold left behind.
func (r *rig) infer(t *testing.T, ctx context.Context, n uint32, ev *events) (*serialboard.Inference, error, time.Duration) {
	t.Helper()
	if ev == nil {
		ev = &events{}
	}
	start := time.Now()
	inf, err := r.brd.Infer(ctx, n, r.input, r.pw, ev.observe)
	d := time.Since(start)
	if h := r.pw.held(); h != 0 {
		t.Errorf("Infer returned with %d Power holds not released", h)
	}
	if inf == nil {
		t.Fatalf("Infer returned no Inference (err %v)", err)
	}
	t.Logf("inference %d: %v in %v: %s; link %+v; board %+v", n, err, d.Round(time.Millisecond), sum(inf), r.l.Stats(), r.fb.Stats())
	return inf, err, d
}

// sum is an Inference's counters in a line.
func sum(inf *serialboard.Inference) string {
	return fmt.Sprintf("tasks %d, reexecuted %d, commits %d, boots %d, hangs %d, events lost %d, result lost %v, output %d bytes",
		len(inf.Tasks), inf.Reexecuted, inf.Commits, inf.Boots, inf.Hangs, inf.EventsLost, inf.ResultLost, len(inf.Output))
}

// verified checks an inference that must have completed with the board's
// output.
func (r *rig) verified(t *testing.T, inf *serialboard.Inference, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("inference %d failed: %v", inf.Number, err)
	}
	if ok, why := serialboard.Verify(inf.Output, linktest.Expected(r.input, r.fcfg.OutputBytes)); !ok {
		t.Errorf("inference %d: wrong output: %s", inf.Number, why)
	}
	if inf.CRCMismatch {
		t.Errorf("inference %d: the output read differed from RESULT's CRC", inf.Number)
	}
	if inf.End < inf.Start {
		t.Errorf("inference %d: ended at %v before its start %v", inf.Number, inf.End, inf.Start)
	}
	// Every task of the plan reported done at least once, unless events
	// were lost on the way.
	seen := map[uint32]bool{}
	for _, tr := range inf.Tasks {
		seen[tr.Task] = true
	}
	if inf.EventsLost == 0 && len(seen) < r.fcfg.Tasks && !inf.ResultLost && inf.Boots == 0 {
		t.Errorf("inference %d: %d distinct tasks reported, the plan has %d", inf.Number, len(seen), r.fcfg.Tasks)
	}
}

// TestCleanInferences: on a clean line two inferences in a row complete
// with every event seen, and a START retransmitted after its ACK was cut
// does not restart the inference.
func TestCleanInferences(t *testing.T) {
	linktest.LeakCheck(t)
	startAcks := 0
	r := newRig(t, rigOpts{board: linktest.Config{
		Tasks: 12, CommitEvery: 3,
		OnFrame: func(n int, m wire.Message) linktest.Fault {
			if a, ok := m.(*wire.Ack); ok && a.Cmd == wire.TypeStart {
				startAcks++
				if startAcks == 1 {
					return linktest.Cut // the first START's answer is lost
				}
			}
			return linktest.None
		},
	}})
	ctx := ctxT(t, 30*time.Second)
	id, err := r.brd.Hello(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if id.Name != "fakeboard" {
		t.Errorf("identity %+v", id)
	}
	for n := uint32(1); n <= 2; n++ {
		ev := &events{}
		inf, err, _ := r.infer(t, ctx, n, ev)
		r.verified(t, inf, err)
		if len(inf.Tasks) != 12 || inf.Commits != 4 || inf.Reexecuted != 0 || inf.Boots != 0 || inf.Hangs != 0 || inf.EventsLost != 0 || inf.ResultLost {
			t.Errorf("inference %d: %s", n, sum(inf))
		}
		for i, tr := range inf.Tasks {
			if tr.Task != uint32(i) || tr.Cycles != 1000+17*uint32(i) {
				t.Errorf("inference %d: task run %d is %+v", n, i, tr)
			}
		}
		if ev.count(link.BoardEvent, wire.TypeResult) != 1 {
			t.Errorf("inference %d: %d RESULTs observed", n, ev.count(link.BoardEvent, wire.TypeResult))
		}
	}
	if s := r.fb.Stats(); s.Starts != 2 || s.Tasks != 24 || s.Inference != 2 {
		t.Errorf("board %+v: want 2 inferences started, 24 tasks run", s)
	}
	if s := r.l.Stats(); s.Retransmissions == 0 {
		t.Errorf("the cut START answer was not retransmitted: %+v", s)
	}
	if got := r.pw.nHoldsAll(); got != 4 {
		t.Errorf("%d Power holds, want 4 (set-up and read-out of each inference)", got)
	}
}

// TestNoisyLine (1a): garbage and half frames between the board's events
// and answers, cut answers and events, and garbage on the host's line
// towards the board: the inference completes with the right output.
func TestNoisyLine(t *testing.T) {
	linktest.LeakCheck(t)
	rnd := rand.New(rand.NewPCG(11, 12)) // used under the board's lock only
	r := newRig(t, rigOpts{board: linktest.Config{
		Noise: func(int) []byte {
			switch rnd.IntN(3) {
			case 0:
				return nil
			case 1: // garbage, 0x00 included
				g := make([]byte, 1+rnd.IntN(40))
				for i := range g {
					g[i] = byte(rnd.IntN(256))
				}
				return g
			default: // half of a frame: a RESULT that must not count
				f, _ := wire.Encode(uint16(rnd.IntN(1<<16)), &wire.Result{Inference: 1, Length: 300, CRC: 0xdeadbeef})
				return f[:1+rnd.IntN(len(f)-2)]
			}
		},
		OnFrame: func(n int, m wire.Message) linktest.Fault {
			switch m.(type) {
			case *wire.Result:
				return linktest.None
			case *wire.Ack, *wire.Data:
				if n%3 == 0 {
					return linktest.Cut
				}
			default:
				if n%5 == 0 {
					return linktest.Cut
				}
			}
			return linktest.None
		},
	}, link: link.Config{RTO: 50 * time.Millisecond}})
	ctx := ctxT(t, 60*time.Second)
	if _, err := r.brd.Hello(ctx); err != nil {
		t.Fatal(err)
	}
	// Noise towards the board: first half a HELLO frame with no delimiter,
	// which swallows the link's next frame (the first SET_INPUT: it is
	// retransmitted), then more while the inference runs.
	hello, _ := wire.Encode(77, &wire.Hello{})
	if err := r.port.LineNoise(hello[:len(hello)/2]); err != nil {
		t.Fatal(err)
	}
	stop := make(chan struct{})
	noiseDone := make(chan struct{})
	go func() {
		defer close(noiseDone)
		nr := rand.New(rand.NewPCG(13, 14))
		for {
			select {
			case <-stop:
				return
			case <-time.After(30 * time.Millisecond):
			}
			g := make([]byte, 1+nr.IntN(20))
			for i := range g {
				g[i] = byte(nr.IntN(256))
			}
			if nr.IntN(2) == 0 {
				// Ended: it costs the board no frame of the link's.
				// Otherwise the link's next frame is lost with it.
				g = append(g, 0)
			}
			r.mu.Lock()
			r.port.LineNoise(g)
			r.mu.Unlock()
		}
	}()
	inf, err, _ := r.infer(t, ctx, 1, nil)
	close(stop)
	<-noiseDone
	r.verified(t, inf, err)
	if inf.Hangs != 0 || inf.ResultLost || inf.Boots != 0 {
		t.Errorf("noise only: %s", sum(inf))
	}
	if inf.EventsLost == 0 {
		t.Error("cut events went unnoticed")
	}
	s := r.l.Stats()
	if s.BadFrames == 0 || s.Retransmissions == 0 {
		t.Errorf("the noise went unnoticed by the link: %+v", s)
	}
	if fs := r.fb.Stats(); fs.RxErrors == 0 || fs.Starts != 1 {
		t.Errorf("board %+v: want receive errors and one START executed", fs)
	}
}

// TestResultCutByBrownOut (1b): the board browns out halfway through its
// RESULT frame; the BOOT after it says the plan is done and nothing runs,
// so the driver reads the output without a RESULT.
func TestResultCutByBrownOut(t *testing.T) {
	linktest.LeakCheck(t)
	r := newRig(t, rigOpts{board: linktest.Config{
		OnFrame: func(n int, m wire.Message) linktest.Fault {
			if _, ok := m.(*wire.Result); ok {
				return linktest.BrownOut
			}
			return linktest.None
		},
	}})
	ctx := ctxT(t, 30*time.Second)
	inf, err, _ := r.infer(t, ctx, 1, nil)
	r.verified(t, inf, err)
	if !inf.ResultLost || inf.Boots != 1 || inf.Hangs != 0 || len(inf.Tasks) != 24 {
		t.Errorf("want the result lost, 1 boot, no hang, 24 tasks: %s", sum(inf))
	}
	if !r.log.has("RESULT was lost") {
		t.Error("the lost RESULT was not logged")
	}
	if s := r.l.Stats(); s.BadFrames == 0 {
		t.Errorf("the half RESULT frame was not dropped: %+v", s)
	}
}

// TestBrownOuts (1c): several brown-outs in the middle of an inference, in
// tasks (uncommitted work lost and re-executed) and halfway through frames
// (a TASK_DONE, a COMMIT): the board resumes from its progress word each
// time and the inference completes.
func TestBrownOuts(t *testing.T) {
	linktest.LeakCheck(t)
	inTask := map[uint32]bool{5: true, 10: true} // brown-out once in each
	cutDone, cutCommit := false, false
	r := newRig(t, rigOpts{board: linktest.Config{
		Tasks: 24, CommitEvery: 3,
		OnTask: func(task uint32) linktest.Fault {
			if inTask[task] {
				delete(inTask, task)
				return linktest.BrownOut
			}
			return linktest.None
		},
		OnFrame: func(n int, m wire.Message) linktest.Fault {
			switch m := m.(type) {
			case *wire.TaskDone:
				if m.Task == 13 && !cutDone {
					cutDone = true
					return linktest.BrownOut
				}
			case *wire.Commit:
				if m.Progress == 18 && !cutCommit {
					cutCommit = true
					return linktest.BrownOut
				}
			}
			return linktest.None
		},
	}})
	ctx := ctxT(t, 30*time.Second)
	inf, err, _ := r.infer(t, ctx, 1, nil)
	r.verified(t, inf, err)
	// Task 5: progress 3, tasks 3 and 4 reported then lost: run again.
	// Task 10: progress 9, task 9 again. TASK_DONE 13 cut: progress 12,
	// task 12 again (task 13's report was cut: its second one is its
	// first). COMMIT 18 cut: progress 18 written, nothing again.
	if inf.Boots != 4 || inf.Reexecuted != 4 || inf.Hangs != 0 || inf.ResultLost || inf.EventsLost != 0 {
		t.Errorf("want 4 boots, 4 re-executed tasks, no hang, no loss: %s", sum(inf))
	}
	if s := r.fb.Stats(); s.Cycles != 4 || s.Progress != 24 {
		t.Errorf("board %+v", s)
	}
}

// TestHang (2): the board stops answering in the middle of an inference
// while powered; after HangTimeout the driver power-cycles it, counts the
// hang, and the inference completes.
func TestHang(t *testing.T) {
	linktest.LeakCheck(t)
	hung := false
	r := newRig(t, rigOpts{
		board: linktest.Config{OnFrame: func(n int, m wire.Message) linktest.Fault {
			if d, ok := m.(*wire.TaskDone); ok && d.Task == 6 && !hung {
				hung = true
				return linktest.Hang
			}
			return linktest.None
		}},
		driver: serialboard.Config{HangTimeout: 200 * time.Millisecond},
	})
	ctx := ctxT(t, 30*time.Second)
	inf, err, _ := r.infer(t, ctx, 1, nil)
	r.verified(t, inf, err)
	// A loaded machine may stall the fake long enough for a second hang:
	// at least one, each one a power cycle.
	if inf.Hangs < 1 || inf.Hangs != r.pw.nCycles() || inf.Boots != inf.Hangs || inf.ResultLost {
		t.Errorf("want a hang power-cycled and a boot each: %s, %d cycles", sum(inf), r.pw.nCycles())
	}
	if !r.log.has("a hang, power-cycling") {
		t.Error("the hang was not logged")
	}
}

// TestDeadBoard (2): the board stops answering for good (power cycles do
// not revive it): after MaxHangs (5) power cycles without an event the run
// ends with ErrBoardDead, named; nothing blocks.
func TestDeadBoard(t *testing.T) {
	linktest.LeakCheck(t)
	r := newRig(t, rigOpts{
		board: linktest.Config{OnFrame: func(n int, m wire.Message) linktest.Fault {
			if d, ok := m.(*wire.TaskDone); ok && d.Task == 6 {
				return linktest.Die
			}
			return linktest.None
		}},
		driver: serialboard.Config{HangTimeout: 200 * time.Millisecond},
	})
	ctx := ctxT(t, 20*time.Second)
	inf, err, d := r.infer(t, ctx, 1, nil)
	if !errors.Is(err, serialboard.ErrBoardDead) || !strings.Contains(fmt.Sprint(err), "inference 1") {
		t.Fatalf("a dead board: %v, want ErrBoardDead", err)
	}
	if d > 10*time.Second {
		t.Errorf("Infer returned %v after it started; 5 hangs of 200 ms should take about 1 s", d)
	}
	if inf.Hangs != 5 || inf.Hangs != r.pw.nCycles() || inf.Boots != 0 || inf.Output != nil {
		t.Errorf("want repeated power cycles, no boot, no output: %s, %d cycles", sum(inf), r.pw.nCycles())
	}
	if !r.log.has("a hang, power-cycling") {
		t.Error("the hangs were not logged")
	}
}

// TestPortVanishesAndComesBack (3): the pty vanishes in the middle of an
// inference (the symlink the link opened goes: a USB adapter unplugged)
// while the board runs on, its events lost; later a new pty appears at the
// same path. The link reopens it, the driver sees the gap and the
// inference completes; the silence while the port was gone is not a hang.
func TestPortVanishesAndComesBack(t *testing.T) {
	linktest.LeakCheck(t)
	unplugged := make(chan struct{})
	replugged := make(chan struct{})
	ctx := ctxT(t, 30*time.Second)
	r := &rig{}
	r.start(t, rigOpts{
		symlink: true,
		board: linktest.Config{AfterEvent: func(m wire.Message) {
			d, ok := m.(*wire.TaskDone)
			switch {
			case !ok:
			case d.Task == 5:
				r.unplug() // the board runs on, its events lost
				close(unplugged)
			case d.Task == 10:
				// The board waits here until the port is back, so that
				// the RESULT is not lost with the port too.
				select {
				case <-replugged:
				case <-ctx.Done():
				}
			}
		}},
		driver: serialboard.Config{HangTimeout: 400 * time.Millisecond, PortTimeout: 20 * time.Second},
	})
	ev := &events{ch: make(chan link.Event, 1024)}
	type result struct {
		inf *serialboard.Inference
		err error
	}
	done := make(chan result, 1)
	go func() {
		inf, err := r.brd.Infer(ctx, 1, r.input, r.pw, ev.observe)
		done <- result{inf, err}
	}()
	select {
	case <-unplugged:
	case res := <-done:
		t.Fatalf("the inference ended before the port vanished: %v", res.err)
	case <-ctx.Done():
		t.Fatal("the port was never unplugged")
	}
	for lost := false; !lost; {
		select {
		case e := <-ev.ch:
			lost = e.Kind == link.PortLost
		case <-ctx.Done():
			t.Fatal("no PortLost")
		}
	}
	// Gone for several hang timeouts and reopen attempts.
	select {
	case res := <-done:
		t.Fatalf("the inference ended while the port was gone: %v", res.err)
	case <-time.After(1200 * time.Millisecond):
	}
	port, err := linktest.Attach(r.fb, r.path)
	if err != nil {
		close(replugged)
		t.Fatal(err)
	}
	r.setPort(port) // the rig's cleanup closes it
	close(replugged)
	var res result
	select {
	case res = <-done:
	case <-time.After(40 * time.Second):
		t.Fatal("Infer did not return")
	}
	if h := r.pw.held(); h != 0 {
		t.Errorf("Infer returned with %d Power holds", h)
	}
	if res.inf == nil {
		t.Fatalf("no Inference: %v", res.err)
	}
	t.Logf("inference: %v: %s; link %+v", res.err, sum(res.inf), r.l.Stats())
	r.verified(t, res.inf, res.err)
	if ev.count(link.PortLost, 0) != 1 || ev.count(link.PortBack, 0) != 1 {
		t.Errorf("%d PortLost and %d PortBack observed, want 1 each", ev.count(link.PortLost, 0), ev.count(link.PortBack, 0))
	}
	if res.inf.Hangs != 0 || r.pw.nCycles() != 0 || res.inf.Boots != 0 {
		t.Errorf("the board was power-cycled because the host's port was gone: %s", sum(res.inf))
	}
	if res.inf.EventsLost == 0 {
		t.Errorf("the events sent while the port was gone went unnoticed: %s", sum(res.inf))
	}
	if !r.log.has("port lost") || !r.log.has("port back") {
		t.Error("the port's loss and return were not logged")
	}
}

// TestPortVanishesForGood (3): the pty vanishes in the middle of an
// inference and never comes back: Infer fails with ErrPortLost after
// PortTimeout, without power-cycling the board meanwhile.
func TestPortVanishesForGood(t *testing.T) {
	linktest.LeakCheck(t)
	r := &rig{}
	r.start(t, rigOpts{
		symlink: true,
		board: linktest.Config{AfterEvent: func(m wire.Message) {
			if d, ok := m.(*wire.TaskDone); ok && d.Task == 5 {
				r.unplug()
			}
		}},
		driver: serialboard.Config{HangTimeout: 300 * time.Millisecond, PortTimeout: time.Second},
	})
	ctx := ctxT(t, 30*time.Second)
	ev := &events{}
	inf, err, d := r.infer(t, ctx, 1, ev)
	if !errors.Is(err, serialboard.ErrPortLost) {
		t.Fatalf("a port gone for good: %v, want ErrPortLost", err)
	}
	if d < time.Second || d > 15*time.Second {
		t.Errorf("Infer failed after %v, PortTimeout 1 s", d)
	}
	if inf.Hangs != 0 || r.pw.nCycles() != 0 {
		t.Errorf("the board was power-cycled because the host's port was gone: %s", sum(inf))
	}
	if ev.count(link.PortLost, 0) != 1 || !r.log.has("port lost") {
		t.Error("the loss was not observed and logged")
	}
}

// TestPortLostDuringSetup: the port is gone before the input is written:
// Infer fails with ErrPortLost after PortTimeout, and nothing it started
// outlives it (its Power hold is released, its commands end).
func TestPortLostDuringSetup(t *testing.T) {
	linktest.LeakCheck(t)
	r := newRig(t, rigOpts{
		symlink: true,
		driver:  serialboard.Config{PortTimeout: time.Second},
	})
	ctx := ctxT(t, 30*time.Second)
	r.unplug()
	inf, err, _ := r.infer(t, ctx, 1, nil)
	if !errors.Is(err, serialboard.ErrPortLost) {
		t.Fatalf("%v, want ErrPortLost", err)
	}
	if inf.Start != 0 || len(inf.Tasks) != 0 {
		t.Errorf("an inference that never started: %s", sum(inf))
	}
	if s := r.fb.Stats(); s.Starts != 0 {
		t.Errorf("board %+v: started", s)
	}
}

// TestProgressLost (4): a board whose progress word does not survive a
// power cycle: after reporting commits it resumes at 0 (or at a word past
// the plan's end): a *ProgressLostError, never an output taken as good.
func TestProgressLost(t *testing.T) {
	for _, tc := range []struct {
		name   string
		resume func(uint32) uint32
		want   uint32
	}{
		{"resumes at 0", func(uint32) uint32 { return 0 }, 0},
		{"resumes past the end", func(uint32) uint32 { return 29 }, 29},
	} {
		t.Run(tc.name, func(t *testing.T) {
			linktest.LeakCheck(t)
			once := false
			r := newRig(t, rigOpts{board: linktest.Config{
				NVMFault: tc.resume,
				OnTask: func(task uint32) linktest.Fault {
					if task == 8 && !once {
						once = true
						return linktest.BrownOut
					}
					return linktest.None
				},
			}})
			ctx := ctxT(t, 30*time.Second)
			inf, err, _ := r.infer(t, ctx, 1, nil)
			var pe *serialboard.ProgressLostError
			if !errors.As(err, &pe) || !errors.Is(err, serialboard.ErrProgressLost) {
				t.Fatalf("%v, want a ProgressLostError", err)
			}
			if pe.Inference != 1 || pe.Committed != 8 || pe.Resume != tc.want {
				t.Errorf("%+v, want inference 1, committed 8, resume %d", pe, tc.want)
			}
			if inf.Output != nil || inf.Boots != 1 {
				t.Errorf("%s: want no output, one boot", sum(inf))
			}
			if !strings.Contains(err.Error(), "lost committed progress") {
				t.Errorf("error %q", err)
			}
		})
	}
}

// TestBench (5): bench power is always on; it cycles a board only through
// Reset.
func TestBench(t *testing.T) {
	ctx := ctxT(t, 5*time.Second)
	var b serialboard.Bench
	if err := b.Hold(ctx); err != nil || !b.On() {
		t.Errorf("bench: Hold %v, On %v", err, b.On())
	}
	b.Release()
	if err := b.Cycle(ctx); err == nil || !strings.Contains(err.Error(), "no reset") {
		t.Errorf("Cycle without Reset: %v, want an error", err)
	}
	t0 := b.Now()
	resets := 0
	boom := errors.New("boom")
	b.Reset = func(c context.Context) error {
		if c != ctx {
			t.Error("Reset did not get Cycle's context")
		}
		resets++
		if resets == 2 {
			return boom
		}
		return nil
	}
	if err := b.Cycle(ctx); err != nil || resets != 1 {
		t.Errorf("Cycle with Reset: %v, %d resets", err, resets)
	}
	if err := b.Cycle(ctx); !errors.Is(err, boom) || resets != 2 {
		t.Errorf("Cycle with a failing Reset: %v", err)
	}
	if t1 := b.Now(); t0 < 0 || t1 < t0 {
		t.Errorf("Now went from %v to %v", t0, t1)
	}
	var _ serialboard.Power = &b
}
