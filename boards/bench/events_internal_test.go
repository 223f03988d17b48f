package bench

import (
	"context"
	"testing"
	"time"

	"github.com/batteryless/harness/harness/link"
	"github.com/batteryless/harness/harness/wire"
)

// TestWaitStreamingKeepsItsBacklog: events read ahead before a wait stay
// kept, in order, and the wait ends at its instant. (It once handed each
// kept event back to be kept again: a wait with a read-ahead TASK_DONE
// never ended.)
func TestWaitStreamingKeepsItsBacklog(t *testing.T) {
	first := link.Event{Kind: link.BoardEvent, Msg: &wire.TaskDone{Task: 3}}
	second := link.Event{Kind: link.BoardEvent, Msg: &wire.TaskDone{Task: 4}}
	b := &Board{l: &link.Link{}, opt: Options{Mode: Harvester, Rate: time.Millisecond}, backlog: []link.Event{first, second}}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	start := time.Now()
	if err := b.waitStreaming(ctx, start.Add(20*time.Millisecond)); err != nil {
		t.Fatalf("waitStreaming: %v (after %v)", err, time.Since(start))
	}
	if len(b.backlog) != 2 || b.backlog[0].Msg != first.Msg || b.backlog[1].Msg != second.Msg {
		t.Fatalf("backlog after the wait: %+v, want the two events kept in order", b.backlog)
	}
	if !b.sawTaskDone(3) {
		t.Fatal("the read-ahead TASK_DONE of task 3 is lost")
	}
}
