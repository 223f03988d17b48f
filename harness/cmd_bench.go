package main

import (
	"fmt"
	"net/url"
	"os"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/batteryless/harness/boards"
	"github.com/batteryless/harness/boards/bench"
	"github.com/batteryless/harness/boards/supply"
	"github.com/batteryless/harness/boards/supply/deadman"
	"github.com/batteryless/harness/boards/supply/scpi"
	"github.com/batteryless/harness/harness/replay"
)

// The replay of a board on a bench: its flags, and the same settings from a
// bench file (--config), which reads like a labgrid environment:
//
//	resources: {port: /dev/serial/by-id/..., supply: "tcp://10.0.0.5:5025", channel: 2}
//	drivers:   {serial: {baud: 115200}, supply: {timeout: 2s, log: supply.log}}
//	strategy:  {power: gate, off-time: min, min-off: 50ms, rate: 10ms}
//
// (profile, scheduler, model... are the file's top-level keys, as for any
// command). A flag given wins over the file.

// addBenchFlags adds the bench's flags to replay.
func addBenchFlags(cmd *cobra.Command) {
	f := cmd.Flags()
	f.String("port", "", "serial: the board's serial port (/dev/serial/by-id/...; resources.port of a bench file)")
	f.Int("baud", 0, "serial: the port's baud rate (default the link's 115200; drivers.serial.baud)")
	f.String("supply", "", "serial: the programmable supply's URL, its power strategy ("+supplyURLForms+"; resources.supply)")
	f.String("power", "gate", "serial: how the supply gives the power: gate (closed loop, a virtual capacitor), curve (the predicted voltage as the instrument's list), harvester (the trace's power as the current limit; the board's own capacitor); strategy.power")
	f.String("off-time", "min", "serial, gate: how long the output stays off: min (--min-off, the model's clock advancing by the whole charging time) or real; strategy.off-time")
	f.Duration("min-off", bench.DefaultMinOff, "serial: the shortest time off, long enough for a real reset (strategy.min-off)")
	f.Duration("rate", 0, "serial, gate: the period of the rail's setpoints (default the instrument's least command interval, at least 5 ms; strategy.rate)")
	f.Float64("curve-tolerance", 0.02, "serial, curve: the largest error of the compiled curve in volts (strategy.curve-tolerance)")
	f.String("supply-log", "", "serial: append a timestamped transcript of every SCPI command and answer to FILE (drivers.supply.log)")
	f.Duration("supply-timeout", 2*time.Second, "serial: bound of each instrument call (drivers.supply.timeout)")
}

// supplyURLForms are the URL forms in one line.
const supplyURLForms = "tcp://HOST:PORT, serial:///dev/ttyUSB0?baud=9600, periph://?enable=GPIO17..."

// benchOptions are the boards.Options of the serial board: the port, the
// supply and the strategy, from the flags or the bench file. The function
// returned closes the transcript.
func benchOptions(s *settings) (boards.Options, func(), error) {
	o := boards.Options{ELF: s.str("elf"), Port: s.pick("port", "resources.port")}
	o.Supply = s.pick("supply", "resources.supply", "supply.url")
	o.Power = s.pick("power", "strategy.power")
	o.OffTime = s.pick("off-time", "strategy.off-time")
	if b := s.pick("baud", "drivers.serial.baud"); b != "" {
		n, err := strconv.Atoi(b)
		if err != nil || n < 0 {
			return o, nil, fmt.Errorf("baud %q: want a whole number of bits per second", b)
		}
		o.Baud = n
	}
	// The file's channel completes the file's supply URL (a --supply given
	// names its own).
	if ch := s.pick("resources.channel", "supply.channel"); ch != "" && ch != "0" && o.Supply != "" && !s.v.IsSet("supply") {
		n, err := strconv.Atoi(ch)
		if err != nil || n < 1 {
			return o, nil, fmt.Errorf("resources.channel %q: want an output from 1", ch)
		}
		u, err := supply.ParseURL(o.Supply)
		if err != nil {
			return o, nil, err
		}
		q := u.Query()
		q.Set("channel", strconv.Itoa(n))
		u.RawQuery = q.Encode()
		o.Supply = u.String()
	}
	if _, err := bench.ParseMode(o.Power); err != nil {
		return o, nil, fmt.Errorf("--power: %w", err)
	}
	if _, err := bench.ParseOffTime(o.OffTime); err != nil {
		return o, nil, fmt.Errorf("--off-time: %w", err)
	}
	opt := &bench.Options{StartDeadman: func(u string) (bench.Deadman, error) { return deadman.Start(u) }}
	var err error
	if opt.MinOff, err = duration(s, "min-off", "strategy.min-off"); err != nil {
		return o, nil, err
	}
	if opt.Rate, err = duration(s, "rate", "strategy.rate"); err != nil {
		return o, nil, err
	}
	if opt.SupplyOptions.Timeout, err = duration(s, "supply-timeout", "drivers.supply.timeout"); err != nil {
		return o, nil, err
	}
	if v := s.pick("curve-tolerance", "strategy.curve-tolerance"); v != "" {
		tol, err := strconv.ParseFloat(v, 64)
		if err != nil || !(tol > 0 && tol < 5) {
			return o, nil, fmt.Errorf("curve-tolerance %q: want volts above 0 (e.g. 0.02)", v)
		}
		opt.CurveTolerance = tol
	}
	closer := func() {}
	if path := s.pick("supply-log", "drivers.supply.log", "supply.log"); path != "" {
		f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return o, nil, fmt.Errorf("--supply-log: %w", err)
		}
		opt.SupplyOptions.Transcript = scpi.NewTranscript(f)
		closer = func() { f.Close() }
	}
	o.Extra = opt
	return o, closer, nil
}

// duration reads a duration from a flag or a bench file's key.
func duration(s *settings, key string, nested ...string) (time.Duration, error) {
	v := s.pick(key, nested...)
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%s %q: want a duration (e.g. 50ms)", key, v)
	}
	return d, nil
}

// redactURL drops a URL's query for tables (it may hold long periph paths).
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return raw
	}
	u.RawQuery = ""
	return u.String()
}

// benchRows are the bench's lines of the replay table.
func benchRows(t *replay.TimingError, b *bench.Stats) [][]string {
	var rows [][]string
	if t != nil {
		rows = append(rows, []string{"timing error p50 / p99 / max", fmt.Sprintf("%s / %s / %s", msPrec(t.P50), msPrec(t.P99), msPrec(t.Max)),
			fmt.Sprintf("%d power edges: the modelled instant against the command's", t.Edges)})
		if e := t.Evidence; e != nil {
			rows = append(rows, []string{"  by the board's BOOTs", fmt.Sprintf("%s / %s / %s", msPrec(e.P50), msPrec(e.P99), msPrec(e.Max)),
				fmt.Sprintf("%d turn-ons: the BOOT less the calibrated boot latency", e.Edges)})
		}
	}
	if b == nil {
		return rows
	}
	rows = append(rows, []string{"bench", b.Mode + " / off time " + b.OffTime, b.Instrument},
		[]string{"boot latency (calibrated)", msPrec(b.BootLatencyS), "spread " + msPrec(b.BootLatencySpreadS)})
	if b.Setpoints > 0 {
		rows = append(rows, []string{"rail setpoints", strconv.Itoa(b.Setpoints), fmt.Sprintf("%.0f per second while on", b.SetpointRateHz)})
	}
	if b.CurrentLimits > 0 {
		rows = append(rows, []string{"current limits streamed", strconv.Itoa(b.CurrentLimits), ""})
	}
	if c := b.Curve; c != nil {
		rows = append(rows, []string{"curve", fmt.Sprintf("%s, %d points", c.Kind, c.Points), fmt.Sprintf("largest error %.1f mV, %.2f s", c.ErrorV*1e3, c.DurationS)})
	}
	rows = append(rows, []string{"board lag (mean)", msPrec(b.LagS), "its events against their modelled instants"},
		[]string{"hangs / no boots / unexpected boots", fmt.Sprintf("%d / %d / %d", b.Hangs, b.NoBoots, b.UnexpectedBoots), fmt.Sprintf("late cuts %d, rule disagreements %d, reconnects %d", b.LateCuts, b.RuleDisagreements, b.Reconnects)})
	return rows
}

// msPrec formats seconds as milliseconds to the microsecond.
func msPrec(sec float64) string { return strconv.FormatFloat(sec*1e3, 'f', 3, 64) + " ms" }
