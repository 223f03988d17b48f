package linktest_test

import (
	"bytes"
	"context"
	"fmt"
	"time"

	"github.com/batteryless/harness/harness/link"
	"github.com/batteryless/harness/harness/link/linktest"
	"github.com/batteryless/harness/harness/wire"
)

// A fresh board on a pseudo-terminal (its Path stands for /dev/ttyUSB0):
// the link deploys an image, writes the input and starts inference 1. The
// first answer to START is lost on the line, so the link sends START again;
// the board answers it from its de-duplication history and runs the
// inference once. The output read back is what the board computes.
func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	acks := 0 // answers to START the board sent
	b := linktest.New(linktest.Config{Tasks: 4, InputBytes: 16, OutputBytes: 8, NoImage: true,
		OnFrame: func(_ int, m wire.Message) linktest.Fault {
			if a, ok := m.(*wire.Ack); ok && a.Cmd == wire.TypeStart {
				if acks++; acks == 1 {
					return linktest.Drop // lost on the line
				}
			}
			return linktest.None
		}})
	defer b.Close()
	var l *link.Link
	port, err := linktest.Attach(b, "")
	if err == nil {
		defer port.Close()
		l, err = link.Open(ctx, link.Config{Path: port.Path, RTO: 100 * time.Millisecond})
	}
	if err != nil {
		fmt.Println(err)
		return
	}
	defer l.Close()
	input := []byte("sixteen bytes in")
	for _, step := range []func() error{
		func() error { _, err := l.Hello(ctx); return err },
		func() error { return l.Deploy(ctx, []byte("a plan image")) },
		func() error { return l.SetInput(ctx, input) },
		func() error { return l.Start(ctx, 1) },
	} {
		if err := step(); err != nil {
			fmt.Println(err)
			return
		}
	}
	var res *wire.Result
	for res == nil {
		select {
		case ev := <-l.Events():
			res, _ = ev.Msg.(*wire.Result)
		case <-ctx.Done():
			fmt.Println("no RESULT")
			return
		}
	}
	out, err := l.ReadOutput(ctx, 0, int(res.Length))
	if err != nil {
		fmt.Println(err)
		return
	}
	s := b.Stats()
	fmt.Printf("inference %d: output verified %v; STARTs executed %d, answered from the history %v\n",
		res.Inference, bytes.Equal(out, linktest.Expected(input, 8)), s.Executed[wire.TypeStart], s.Duplicates > 0)
	// Output:
	// inference 1: output verified true; STARTs executed 1, answered from the history true
}
