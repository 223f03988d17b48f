package traces_test

import (
	"fmt"
	"os"
	"strings"

	"github.com/batteryless/harness/traces"
)

// Reading a REACT trace (detected from its header) and summarizing it.
func ExampleNewReader() {
	data := "sec RSSI,mW\n0.00\t0.00\n0.02\t2.50\n0.04\t10.00\n0.06\t0.03\n"
	r, err := traces.NewReader(strings.NewReader(data), "rf.trace", traces.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	st, err := traces.Summarize(r, 1e-3)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("%s: %s, %d samples, %.2f s, mean %.4f mW, energy %.4f mJ, on %.0f %% of the time\n",
		r.Meta().Name, r.Meta().Format, st.Samples, st.Duration, st.MeanW*1e3, st.EnergyJ*1e3, st.FractionAbove*100)
	// Output:
	// rf.trace: react, 4 samples, 0.08 s, mean 3.1325 mW, energy 0.2506 mJ, on 50 % of the time
}

// Bad input gives one line naming the file and line.
func ExampleNewReader_error() {
	data := "time_s,power_w\n0.02,0.001\n0.06,0.001\n0.04,0.001\n"
	r, _ := traces.NewReader(strings.NewReader(data), "rf.csv", traces.Options{})
	_, err := traces.Summarize(r, 0)
	fmt.Println(err)
	// Output:
	// rf.csv:4: time 0.04 s is not after the previous 0.06 s
}

// A synthetic trace, resampled to 1 s bins (energy-preserving) and written as
// the canonical CSV.
func ExampleWriteCSV() {
	r, err := traces.Synth("square:high=2mW,low=0,period_on=1.5s,period_off=1.5s,duration=4s,rate=10Hz")
	if err != nil {
		fmt.Println(err)
		return
	}
	n, err := traces.WriteCSV(os.Stdout, traces.Resample(r, 1))
	fmt.Println(n, err)
	// Output:
	// # source: square:high=2mW,low=0,period_on=1.5s,period_off=1.5s,duration=4s,rate=10Hz
	// # format: synth
	// # kind: power
	// # period_s: 1
	// # comment: transform: resampled to 1 s bins, energy-preserving
	// time_s,power_w
	// 0,0.002
	// 1,0.001
	// 2,0
	// 3,0.002
	// 4 <nil>
}

// The bundled traces need no files: a default for runs without a trace.
func ExampleOpenBundled() {
	fmt.Println(traces.Bundled())
	r, err := traces.OpenBundled("square-2mW")
	if err != nil {
		fmt.Println(err)
		return
	}
	st, _ := traces.Summarize(traces.Loop(func() (traces.Reader, error) { return traces.OpenBundled("square-2mW") }, 600), 1e-3)
	fmt.Printf("%s looped: %.0f s, %.0f mJ, %d on-stretches of %.0f s\n", r.Meta().Name, st.Duration, st.EnergyJ*1e3, st.OnStretches, st.MeanOnS)
	// Output:
	// [rf-office.csv solar-window.csv square-2mW.csv]
	// square-2mW.csv looped: 600 s, 480 mJ, 120 on-stretches of 2 s
}
