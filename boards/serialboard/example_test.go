package serialboard_test

import (
	"context"
	"fmt"
	"time"

	"github.com/batteryless/harness/boards/serialboard"
	"github.com/batteryless/harness/harness/link"
	"github.com/batteryless/harness/harness/link/linktest"
	"github.com/batteryless/harness/harness/wire"
)

// A board on bench power at the end of a serial line runs an inference;
// the output is verified against the reference. Here the board is a fake
// behind a pseudo-terminal (its Path stands for /dev/ttyUSB0), and it
// browns out once halfway through its RESULT frame: the driver learns from
// the BOOT after it that the plan is done.
func ExampleBoard_Infer() {
	const tasks, outBytes = 8, 16
	cut := false
	fb := linktest.New(linktest.Config{Tasks: tasks, OutputBytes: outBytes,
		OnFrame: func(n int, m wire.Message) linktest.Fault {
			if _, ok := m.(*wire.Result); ok && !cut {
				cut = true
				return linktest.BrownOut
			}
			return linktest.None
		}})
	defer fb.Close()
	port, err := linktest.Attach(fb, "")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer port.Close()

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	l, err := link.Open(ctx, link.Config{Path: port.Path})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer l.Close()
	brd := serialboard.New(l, serialboard.Config{Tasks: tasks, OutputBytes: outBytes})
	id, err := brd.Hello(ctx)
	if err != nil {
		fmt.Println(err)
		return
	}
	input := []byte("an input tensor of 32 bytes.....")
	bench := &serialboard.Bench{Reset: func(context.Context) error { fb.PowerCycle(); return nil }}
	inf, err := brd.Infer(ctx, 1, input, bench, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	ok, _ := serialboard.Verify(inf.Output, linktest.Expected(input, outBytes))
	fmt.Printf("%s: %d tasks, %d commits, %d boot, result lost %v, verified %v\n",
		id.Name, len(inf.Tasks), inf.Commits, inf.Boots, inf.ResultLost, ok)
	// Output:
	// fakeboard: 8 tasks, 8 commits, 1 boot, result lost true, verified true
}
