// Package workpool runs jobs on a bounded number of goroutines, with a
// limit per resource group: a real board runs one job at a time while the
// simulated board takes every core. Jobs start in the order given, each as
// soon as a worker and its group have room, so that one busy board does not
// hold up the others.
package workpool

import (
	"context"
	"sync"
)

// Job is one unit of work.
type Job struct {
	// Group names the resource the job needs ("" is a group too).
	Group string
	// Do runs the job; ctx is cancelled when the pool's context is.
	Do func(ctx context.Context)
}

// Pool bounds how many jobs run at once.
type Pool struct {
	// Workers bounds the jobs running at once over all groups (at least
	// 1).
	Workers int
	// Limit bounds the jobs of one group running at once; nil or a
	// result below 1 means no bound but Workers.
	Limit func(group string) int
}

// Run runs every job and returns when all that started have returned.
// Once ctx is cancelled no further job starts; Run returns the number of
// jobs that never started.
func (p Pool) Run(ctx context.Context, jobs []Job) (notStarted int) {
	workers := max(p.Workers, 1)
	var (
		mu      sync.Mutex
		cond    = sync.NewCond(&mu)
		running = map[string]int{}
		total   int
		taken   = make([]bool, len(jobs))
		left    = len(jobs)
		wg      sync.WaitGroup
	)
	limit := func(g string) int {
		if p.Limit == nil {
			return workers
		}
		if l := p.Limit(g); l > 0 {
			return l
		}
		return workers
	}
	// Wake the dispatcher when the context ends.
	stop := context.AfterFunc(ctx, func() {
		mu.Lock()
		cond.Broadcast()
		mu.Unlock()
	})
	defer stop()
	mu.Lock()
	for left > 0 && ctx.Err() == nil {
		next := -1
		if total < workers {
			for i, j := range jobs {
				if !taken[i] && running[j.Group] < limit(j.Group) {
					next = i
					break
				}
			}
		}
		if next < 0 {
			cond.Wait()
			continue
		}
		taken[next] = true
		left--
		j := jobs[next]
		running[j.Group]++
		total++
		wg.Add(1)
		go func() {
			defer wg.Done()
			j.Do(ctx)
			mu.Lock()
			running[j.Group]--
			total--
			cond.Broadcast()
			mu.Unlock()
		}()
	}
	mu.Unlock()
	wg.Wait()
	return left
}
