package replay

import (
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/batteryless/harness/boards/sim"
	"github.com/batteryless/harness/harness/model"
	"github.com/batteryless/harness/harness/refexec"
)

// reference is the expected output of the replay's inferences: given, or
// computed by the reference executor in a goroutine while the replay runs.
// With seeds, the executor also hands every layer's output to the board's
// memo (see sim.Seeds), so that the numbers are computed once, not twice.
type reference struct {
	out   []byte
	err   error
	seeds *sim.Seeds
	run   func()        // computes out; nil when given
	once  sync.Once     // starts run, once
	began atomic.Bool   // run was started
	done  chan struct{} // closed when out (or err) is set
}

// newReference prepares the reference output of input (see start and
// compute), unless given (then there are no seeds either).
func newReference(m *model.Model, input, given []byte, seeded bool) (*reference, error) {
	r := &reference{done: make(chan struct{})}
	if given != nil {
		r.out = given
		close(r.done)
		return r, nil
	}
	e := refexec.New(m)
	if err := e.SetInput(input); err != nil {
		return nil, err
	}
	if seeded {
		r.seeds = sim.NewSeeds(m)
	}
	r.run = func() {
		defer close(r.done)
		defer func() {
			if r.seeds != nil {
				r.seeds.Close()
			}
			if p := recover(); p != nil {
				r.err = fmt.Errorf("replay: reference executor: %v", p)
			}
		}()
		if r.seeds != nil {
			e.InvokeEach(r.seeds.Put)
		} else {
			e.Invoke()
		}
		r.out = append([]byte(nil), e.Output()...)
	}
	return r, nil
}

// start starts computing the reference output in a goroutine, unless it
// is given or already started.
func (r *reference) start() {
	r.once.Do(func() {
		if r.run != nil {
			r.began.Store(true)
			go r.run()
		}
	})
}

// compute computes the reference output on the calling goroutine, unless
// it is given or already started (then it returns at once).
func (r *reference) compute() {
	r.once.Do(func() {
		if r.run != nil {
			r.began.Store(true)
			r.run()
		}
	})
}

// wait waits for the reference output (starting its computation if need
// be).
func (r *reference) wait() ([]byte, error) {
	r.start()
	<-r.done
	return r.out, r.err
}

// join waits for the reference's computation, if it was started.
func (r *reference) join() {
	if r.began.Load() {
		<-r.done
	}
}

// ready reports whether the reference output is there.
func (r *reference) ready() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

// referenceWall times the plain reference executor on the same number of
// inferences, for comparison with the replay's wall time.
func referenceWall(m *model.Model, input []byte, n int) float64 {
	e := refexec.New(m)
	if err := e.SetInput(input); err != nil || n == 0 {
		return 0
	}
	// Every inference of one input costs the same: past maxTimed, the
	// time of maxTimed is scaled (a replay of thousands of inferences
	// should not take as long again to be compared).
	timed := min(n, maxTimed)
	start := time.Now()
	for i := 0; i < timed; i++ {
		e.Invoke()
	}
	return time.Since(start).Seconds() * float64(n) / float64(timed)
}

// maxTimed is how many reference inferences referenceWall times at most.
const maxTimed = 50
