package scpi_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/batteryless/harness/boards/supply/emulator"
	"github.com/batteryless/harness/boards/supply/scpi"
)

// Example talks to an emulated Rigol DP832: a query, a command, a sync, and
// the error queue drained at a checkpoint, which names the entry and the
// command that caused it.
func Example() {
	in, _ := emulator.New(emulator.Config{Dialect: "rigol-dp800"})
	defer in.Close()
	ctx := context.Background()
	addr, _ := in.ServeTCP(ctx, "127.0.0.1:0")

	c, err := scpi.Dial(ctx, scpi.TCP{Addr: addr.String()}, scpi.Options{Timeout: time.Second})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer c.Close()
	idn, _ := c.Query(ctx, "*IDN?")
	id, _ := scpi.ParseIdentity(idn)
	fmt.Println(id.Manufacturer, id.Model)
	_ = c.Write(ctx, ":APPL CH1,31") // CH1 goes to 30 V
	_ = c.Sync(ctx)
	err = c.Checkpoint(ctx, "after configuration")
	var qe *scpi.QueueError
	fmt.Println(errors.As(err, &qe) && qe.Has(-222), qe.Since)
	// Output:
	// RIGOL TECHNOLOGIES DP832
	// true [*IDN? :APPL CH1,31 *OPC?]
}
