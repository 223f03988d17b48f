package workpool

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestLimits: no more than Workers jobs at once, no more than a group's
// limit of that group, every job run once.
func TestLimits(t *testing.T) {
	var mu sync.Mutex
	running := map[string]int{}
	total, maxTotal := 0, 0
	maxGroup := map[string]int{}
	var done [40]int32
	var jobs []Job
	for i := 0; i < 40; i++ {
		g := []string{"board-a", "board-b", "sim"}[i%3]
		jobs = append(jobs, Job{Group: g, Do: func(ctx context.Context) {
			mu.Lock()
			running[g]++
			total++
			maxTotal = max(maxTotal, total)
			maxGroup[g] = max(maxGroup[g], running[g])
			mu.Unlock()
			time.Sleep(2 * time.Millisecond)
			atomic.AddInt32(&done[i], 1)
			mu.Lock()
			running[g]--
			total--
			mu.Unlock()
		}})
	}
	limits := map[string]int{"board-a": 1, "board-b": 1, "sim": 3}
	left := Pool{Workers: 4, Limit: func(g string) int { return limits[g] }}.Run(context.Background(), jobs)
	if left != 0 || maxTotal > 4 || maxGroup["board-a"] != 1 || maxGroup["board-b"] != 1 || maxGroup["sim"] > 3 {
		t.Errorf("left %d, at most %d at once, per group %v", left, maxTotal, maxGroup)
	}
	for i, d := range done {
		if d != 1 {
			t.Errorf("job %d ran %d times", i, d)
		}
	}
}

// TestCancel: once the context ends no job starts; Run waits for the
// running ones and counts the others.
func TestCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var started int32
	var jobs []Job
	for i := 0; i < 10; i++ {
		jobs = append(jobs, Job{Do: func(ctx context.Context) {
			if atomic.AddInt32(&started, 1) == 2 {
				cancel()
			}
			<-ctx.Done()
		}})
	}
	left := Pool{Workers: 2}.Run(ctx, jobs)
	if started != 2 || left != 8 {
		t.Errorf("started %d, left %d; want 2, 8", started, left)
	}
}

func ExamplePool() {
	var mu sync.Mutex
	order := []string{}
	jobs := []Job{}
	for _, name := range []string{"bench-1: a", "bench-1: b", "bench-1: c"} {
		jobs = append(jobs, Job{Group: "bench-1", Do: func(ctx context.Context) {
			mu.Lock()
			order = append(order, name)
			mu.Unlock()
		}})
	}
	// One board runs one job at a time, in order.
	Pool{Workers: 4, Limit: func(string) int { return 1 }}.Run(context.Background(), jobs)
	for _, o := range order {
		fmt.Println(o)
	}
	// Output:
	// bench-1: a
	// bench-1: b
	// bench-1: c
}
