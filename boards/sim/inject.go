package sim

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"math/rand/v2"

	"github.com/batteryless/harness/boards"
	"github.com/batteryless/harness/boards/profiles"
	"github.com/batteryless/harness/harness/model"
	"github.com/batteryless/harness/harness/plan"
	"github.com/batteryless/harness/harness/refexec"
)

// InjectConfig is a fault-injection run: one inference on the simulated
// board with brown-outs forced where the commit protocol is most fragile.
type InjectConfig struct {
	// Context, if set, stops the run when done (checked every 1,024 steps).
	Context context.Context
	Model   *model.Model
	Plan    *plan.Plan
	Profile *profiles.Profile
	Input   []byte
	// Boundaries forces a brown-out after every task (before the next
	// starts), each boundary once.
	Boundaries bool
	// Random forces this many brown-outs at seeded random points inside
	// tasks (a random segment of a random task, at a random fraction).
	Random int
	Seed   uint64
	Faults Faults
	// NoMemo: see Config.NoMemo.
	NoMemo bool
	// Droop makes every third supply reading of a plan that reads its
	// supply (the run-time rule, jit) see nearly nothing above brown-out,
	// so that its early commits, snapshots and sleeps happen under the
	// brown-outs too; the others see plenty.
	Droop bool
}

type point struct {
	task     int
	segment  Kind
	fraction float64
}

// MaxRandomPoints bounds InjectConfig.Random: each point is a brown-out
// and a replay of up to a commit group.
const MaxRandomPoints = 1_000_000

// pointStream draws the random brown-out points in task order, one task's
// at a time, so that a large count costs no memory up front: the tasks of
// n uniform points in sorted order, each the minimum of the points left
// (1 - V^(1/left) of what remains of [0, 1)).
type pointStream struct {
	rng   *rand.Rand
	tasks int
	left  int
	at    float64 // the last point's position in [0, 1)
	next  point   // drawn, not yet handed out
	ok    bool
	kinds []Kind
	p     *plan.Plan
}

func newPointStream(p *plan.Plan, n int, seed uint64) *pointStream {
	s := &pointStream{rng: rand.New(rand.NewPCG(seed, 0x1e7)), tasks: len(p.Tasks), left: n, p: p,
		kinds: []Kind{Read, Compute, Write, Commit}}
	s.draw()
	return s
}

func (s *pointStream) draw() {
	if s.left == 0 {
		s.ok = false
		return
	}
	s.at += (1 - s.at) * (1 - math.Pow(s.rng.Float64(), 1/float64(s.left)))
	s.left--
	t := min(int(s.at*float64(s.tasks)), s.tasks-1)
	k := s.kinds[s.rng.IntN(len(s.kinds))]
	if k == Commit && !s.p.Tasks[t].Commit {
		k = Write
	}
	s.next, s.ok = point{t, k, s.rng.Float64()}, true
}

// upTo hands out the points of tasks up to and including task.
func (s *pointStream) upTo(task int, into map[int][]point) {
	for s.ok && s.next.task <= task {
		into[s.next.task] = append(into[s.next.task], s.next)
		s.draw()
	}
}

// Inject runs one inference with forced brown-outs and compares its output
// with the reference executor's, value by value.
func Inject(cfg InjectConfig) (*boards.InjectResult, error) {
	b, err := New(cfg.Model, cfg.Plan, cfg.Profile, cfg.Faults)
	if err != nil {
		return nil, err
	}
	b.SetMemo(!cfg.NoMemo)
	// The reference executor computes the expected output in a goroutine;
	// with the memo, its layer outputs seed the board's memo, checked on
	// their exact input bytes like any memo entry.
	e := refexec.New(cfg.Model)
	if err := e.SetInput(cfg.Input); err != nil {
		return nil, err
	}
	var seeds *Seeds
	if !cfg.NoMemo {
		seeds = NewSeeds(cfg.Model)
		b.SetSeeds(seeds)
	}
	var want []byte
	var refErr error
	refDone := make(chan struct{})
	go func() {
		defer close(refDone)
		defer func() {
			if seeds != nil {
				seeds.Close()
			}
			if p := recover(); p != nil {
				refErr = fmt.Errorf("inject: reference executor: %v", p)
			}
		}()
		if seeds != nil {
			e.InvokeEach(seeds.Put)
		} else {
			e.Invoke()
		}
		want = append([]byte(nil), e.Output()...)
	}()
	defer func() { <-refDone }()
	if err := b.QueueInput(cfg.Input); err != nil {
		return nil, err
	}
	n := len(cfg.Plan.Tasks)
	if cfg.Random < 0 || cfg.Random > MaxRandomPoints {
		return nil, fmt.Errorf("inject: %d random brown-outs: want 0 to %d", cfg.Random, MaxRandomPoints)
	}
	stream := newPointStream(cfg.Plan, cfg.Random, cfg.Seed)
	inside := map[int][]point{}
	res := &boards.InjectResult{Board: "sim", Scheduler: cfg.Plan.Scheduler, Tasks: n}
	boundaryDone := make([]bool, n)
	b.PowerOn()
	started := false
	// Every step either completes a segment or forces a brown-out that is
	// then used up, so the loop ends; the cap (a boundary brown-out can
	// replay a whole commit group, so it grows with the largest group)
	// guards against a board bug.
	longest := 0
	for _, g := range cfg.Plan.Groups() {
		longest = max(longest, g.Last-g.First+1)
	}
	limit := 8 * (n + cfg.Random + 10) * (longest + 1)
	var done <-chan struct{}
	if cfg.Context != nil {
		done = cfg.Context.Done()
	}
	for steps := 0; steps < limit; steps++ {
		if steps&1023 == 0 {
			select {
			case <-done:
				return res, fmt.Errorf("inject: interrupted after %d brown-outs: %w", res.BrownOuts, context.Cause(cfg.Context))
			default:
			}
		}
		avail := math.Inf(1)
		if cfg.Droop && steps%3 == 2 {
			avail = 0.05 * cfg.Plan.Budget
		}
		seg, ok := b.Next(avail)
		if seg.Kind == Sleep {
			res.Sleeps++
		}
		if !ok {
			if started {
				break
			}
			return nil, fmt.Errorf("inject: the board is idle before the inference started")
		}
		if seg.Kind == LoadInput {
			started = true
		}
		if seg.Task >= 0 {
			stream.upTo(seg.Task, inside)
			if len(inside[seg.Task]) == 0 {
				delete(inside, seg.Task)
			}
		}
		if pts := inside[seg.Task]; seg.Task >= 0 && len(pts) > 0 && pts[0].segment == seg.Kind {
			inside[seg.Task] = pts[1:]
			b.BrownOut(pts[0].fraction)
			res.BrownOuts++
			res.Inside++
			b.PowerOn()
			continue
		}
		ev := b.Complete()
		if !started || !b.Running() && ev.InferenceDone {
			if ev.InferenceDone {
				break
			}
			continue
		}
		lastSeg := ev.Kind == Write && !cfg.Plan.Tasks[ev.Task].Commit || ev.Kind == Commit && !cfg.Faults.CommitBeforeWrite ||
			ev.Kind == Write && cfg.Faults.CommitBeforeWrite
		if cfg.Boundaries && ev.Task >= 0 && lastSeg && !boundaryDone[ev.Task] {
			boundaryDone[ev.Task] = true
			b.BrownOut(0)
			res.BrownOuts++
			res.Boundaries++
			b.PowerOn()
		}
	}
	for _, c := range b.Executions {
		if c > 1 {
			res.Reexecuted += c - 1
		}
	}
	if b.Progress() != n {
		return res, fmt.Errorf("inject: the inference did not finish (progress %d of %d)", b.Progress(), n)
	}
	<-refDone
	if refErr != nil {
		return nil, refErr
	}
	out := b.Output()
	for i := range out {
		if out[i] != want[i] {
			res.Mismatches++
		}
	}
	res.Verified = bytes.Equal(out, want)
	return res, nil
}
