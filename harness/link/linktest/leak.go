package linktest

import (
	"runtime"
	"testing"
	"time"
)

// LeakCheck fails the test if goroutines started during it outlive it (a
// board's, a link's, a driver's): it waits up to 5 s for them to end after
// the test's other cleanups. Call it first, so that its cleanup runs last.
func LeakCheck(t testing.TB) {
	before := runtime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(5 * time.Second)
		for runtime.NumGoroutine() > before {
			if time.Now().After(deadline) {
				buf := make([]byte, 1<<20)
				t.Errorf("goroutines leaked: %d before, %d after\n%s", before, runtime.NumGoroutine(), buf[:runtime.Stack(buf, true)])
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	})
}
