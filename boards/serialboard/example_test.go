package serialboard_test

import (
	"context"
	"fmt"
	"time"

	"github.com/batteryless/harness/boards/serialboard"
	"github.com/batteryless/harness/boards/serialboard/internal/fakeboard"
	"github.com/batteryless/harness/harness/link"
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
	fb := fakeboard.New(fakeboard.Config{Tasks: tasks, OutputBytes: outBytes,
		OnFrame: func(m wire.Message) fakeboard.Fault {
			if _, ok := m.(*wire.Result); ok && !cut {
				cut = true
				return fakeboard.BrownOut
			}
			return fakeboard.None
		}})
	defer fb.Close()
	port, err := fakeboard.Attach(fb, "")
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
	ok, _ := serialboard.Verify(inf.Output, fakeboard.Expected(input, outBytes))
	fmt.Printf("%s: %d tasks, %d commits, %d boot, result lost %v, verified %v\n",
		id.Name, len(inf.Tasks), inf.Commits, inf.Boots, inf.ResultLost, ok)
	// Output:
	// fakeboard: 8 tasks, 8 commits, 1 boot, result lost true, verified true
}
