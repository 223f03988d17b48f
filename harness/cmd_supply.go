package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/batteryless/harness/boards/bench/emubench"
	"github.com/batteryless/harness/boards/profiles"
	"github.com/batteryless/harness/boards/supply"
	"github.com/batteryless/harness/boards/supply/dialect"
	"github.com/batteryless/harness/boards/supply/emulator"
	_ "github.com/batteryless/harness/boards/supply/periphrail"
	"github.com/batteryless/harness/boards/supply/scpi"
	"github.com/batteryless/harness/harness/bundled"
	"github.com/batteryless/harness/harness/model"
	"github.com/batteryless/harness/harness/plan"
	"github.com/batteryless/harness/harness/sched"
	"github.com/batteryless/harness/reports"
)

// supplyURLs are the URL forms, for help texts.
const supplyURLs = `URLs: tcp://HOST:PORT (a SCPI socket, port 5025 by default, Rigol 5555),
serial:///dev/ttyUSB0?baud=9600 (RS-232), periph://?enable=GPIO17&dac=/dev/i2c-1:0x60&monitor=/dev/i2c-1:0x40
(a load switch, an MCP4725 and an INA219 through periph); ?dialect=D names the instrument's
dialect when *IDN? does not, ?channel=N (or --channel) the output. Without URL, supply.url of
--config (a "supply:" section with url, channel and log).`

func newSupplyCmd(s *settings) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "supply",
		Short: "Programmable bench supplies: identify, set, measure, switch off, emulate",
		Long: `Talk to a programmable supply (or a periph load switch, DAC and monitor) on the bench.
` + supplyURLs + `

Dialects: ` + strings.Join(dialect.Names(), ", ") + `.`,
	}
	pf := cmd.PersistentFlags()
	pf.String("supply-log", "", "append a timestamped transcript of every SCPI command and answer to FILE")
	pf.Duration("supply-timeout", 2*time.Second, "bound of each instrument call")
	cmd.AddCommand(newSupplyIdentifyCmd(s), newSupplySetCmd(s), newSupplyMeasureCmd(s), newSupplyOffCmd(s), newSupplyServeCmd(s))
	return cmd
}

// supplyConn opens the channel named by the argument (or supply.url),
// --channel (or supply.channel) and the transcript (--supply-log or
// supply.log). The returned closer closes the channel and the log.
func supplyConn(ctx context.Context, s *settings, args []string) (supply.Channel, string, func(), error) {
	raw := s.str("supply.url")
	if len(args) > 0 {
		raw = args[0]
	}
	if raw == "" {
		return nil, "", nil, errors.New("supply: no URL (give one, or supply.url in --config)\n" + supplyURLs)
	}
	ch := s.integer("channel")
	if ch == 0 {
		ch = s.integer("supply.channel")
	}
	if ch != 0 {
		u, err := supply.ParseURL(raw)
		if err != nil {
			return nil, "", nil, err
		}
		if ch < 1 {
			return nil, "", nil, fmt.Errorf("supply: --channel %d: channels count from 1", ch)
		}
		q := u.Query()
		q.Set("channel", strconv.Itoa(ch))
		u.RawQuery = q.Encode()
		raw = u.String()
	}
	opt := supply.Options{Timeout: s.v.GetDuration("supply-timeout")}
	var logf *os.File
	path := s.str("supply-log")
	if path == "" {
		path = s.str("supply.log")
	}
	if path != "" {
		var err error
		if logf, err = os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err != nil {
			return nil, "", nil, fmt.Errorf("supply: --supply-log: %w", err)
		}
		opt.Transcript = scpi.NewTranscript(logf)
	}
	c, err := supply.Open(ctx, raw, opt)
	if err != nil {
		if logf != nil {
			logf.Close()
		}
		return nil, "", nil, err
	}
	return c, raw, func() {
		c.Close()
		if logf != nil {
			logf.Close()
		}
	}, nil
}

// interrupted turns a run ended by SIGINT/SIGTERM (its context cancelled)
// into exit code 130.
func interrupted(ctx context.Context, err error) error {
	if err != nil && ctx.Err() != nil {
		return &exitError{code: exitInterrupted, msg: "interrupted: " + oneLine(err.Error())}
	}
	return err
}

func cmdContext(cmd *cobra.Command) context.Context {
	if ctx := cmd.Context(); ctx != nil {
		return ctx
	}
	return context.Background()
}

// ---------------------------------------------------------------------------
// identify

type supplyIdentity struct {
	URL          string              `json:"url"`
	Manufacturer string              `json:"manufacturer"`
	Model        string              `json:"model"`
	Serial       string              `json:"serial"`
	Firmware     string              `json:"firmware"`
	Dialect      string              `json:"dialect"`
	Channel      string              `json:"channel"`
	Capabilities supply.Capabilities `json:"capabilities"`
}

func newSupplyIdentifyCmd(s *settings) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "identify [URL]",
		Short: "Who the supply is (*IDN?), its dialect and what it can do",
		Long: `Ask the instrument *IDN?, pick its dialect, and print manufacturer, model, serial,
firmware, dialect and the capabilities its programming guide states (channels, ranges,
OVP/OCP, lists with their minimum dwell and points, trigger out, sync, notes).
` + supplyURLs,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmdContext(cmd)
			ch, raw, done, err := supplyConn(ctx, s, args)
			if err != nil {
				return interrupted(ctx, err)
			}
			defer done()
			caps := ch.Capabilities()
			id := supplyIdentity{URL: raw, Dialect: caps.Dialect, Channel: ch.String(), Capabilities: caps}
			if idf, ok := ch.(supply.Identifier); ok {
				i := idf.Identity()
				id.Manufacturer, id.Model, id.Serial, id.Firmware = i.Manufacturer, i.Model, i.Serial, i.Firmware
			}
			if c, ok := ch.(supply.Checker); ok {
				if err := c.Check(ctx, "after identification"); err != nil {
					return interrupted(ctx, err)
				}
			}
			w := cmd.OutOrStdout()
			if s.json() {
				return reports.JSON(w, id)
			}
			rows := [][]string{
				{"url", raw}, {"manufacturer", id.Manufacturer}, {"model", id.Model}, {"serial", id.Serial},
				{"firmware", id.Firmware}, {"dialect", id.Dialect}, {"channel", id.Channel},
				{"capabilities", caps.Summary()}, {"sync", caps.Sync},
			}
			for _, n := range caps.Notes {
				rows = append(rows, []string{"note", n})
			}
			return reports.Table(w, []string{"field", "value"}, rows, nil)
		},
	}
	cmd.Flags().Int("channel", 0, "the output (default: ?channel= of the URL, else 1)")
	return cmd
}

// ---------------------------------------------------------------------------
// measure and off

type supplyMeasurement struct {
	URL    string  `json:"url"`
	Volts  float64 `json:"volts"`
	Amps   float64 `json:"amps"`
	Output bool    `json:"output"`
}

func newSupplyMeasureCmd(s *settings) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "measure [URL]",
		Short: "Measure the output: volts, amps, on or off",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmdContext(cmd)
			ch, raw, done, err := supplyConn(ctx, s, args)
			if err != nil {
				return interrupted(ctx, err)
			}
			defer done()
			r, err := ch.Measure(ctx)
			if err != nil {
				return interrupted(ctx, err)
			}
			return printMeasurement(cmd.OutOrStdout(), s, raw, r)
		},
	}
	cmd.Flags().Int("channel", 0, "the output (default: ?channel= of the URL, else 1)")
	return cmd
}

func printMeasurement(w io.Writer, s *settings, raw string, r supply.Reading) error {
	m := supplyMeasurement{URL: raw, Volts: supply.Volts(r.Voltage), Amps: supply.Amps(r.Current), Output: r.Output}
	if s.json() {
		return reports.JSON(w, m)
	}
	out := "off"
	if r.Output {
		out = "on"
	}
	return reports.Table(w, []string{"url", "volts", "amps", "output"},
		[][]string{{raw, strconv.FormatFloat(m.Volts, 'f', 4, 64), strconv.FormatFloat(m.Amps, 'g', 4, 64), out}}, nil)
}

func newSupplyOffCmd(s *settings) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "off [URL]",
		Short: "Switch the output off",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmdContext(cmd)
			ch, raw, done, err := supplyConn(ctx, s, args)
			if err != nil {
				return interrupted(ctx, err)
			}
			defer done()
			if err := ch.SetOutput(ctx, false); err != nil {
				return interrupted(ctx, err)
			}
			r, err := ch.Measure(ctx)
			if err != nil {
				return interrupted(ctx, err)
			}
			if r.Output {
				return fmt.Errorf("supply %s: the output is still on after OUTP OFF", raw)
			}
			return printMeasurement(cmd.OutOrStdout(), s, raw, r)
		},
	}
	cmd.Flags().Int("channel", 0, "the output (default: ?channel= of the URL, else 1)")
	return cmd
}

// ---------------------------------------------------------------------------
// set

func newSupplySetCmd(s *settings) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "set [URL] [--volts V] [--amps A] [--on|--off] [--profile P] [--for D]",
		Short: "Set the output within the board profile's limits, guarded",
		Long: `Set a supply's output for a board, within the limits of its device profile
(cpu.supply_max and cpu.supply_max_current): a setpoint above them is refused before anything
is sent. With --volts, the output is switched off, OVP is armed at the setpoint + 0.1 V (never
above the profile's maximum) and OCP (where the instrument has one) at --amps, the current limit
set, the error queue checked, then the voltage set; --on switches the output on after another
check and prints what it measures. --for D holds the output on for D and switches it off at the
end, and on every way out (an error, Ctrl-C, SIGTERM: exit 130). --off switches it off.
` + supplyURLs,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runSupplySet(cmd, s, args)
		},
	}
	f := cmd.Flags()
	f.Int("channel", 0, "the output (default: ?channel= of the URL, else 1)")
	f.Float64("volts", 0, "the voltage setpoint in V (required with --on)")
	f.Float64("amps", 0, "the current limit in A (default: the profile's cpu.supply_max_current)")
	f.Bool("on", false, "switch the output on")
	f.Bool("off", false, "switch the output off")
	f.String("profile", "msp430fr5994", "the board's device profile, whose limits apply: "+strings.Join(profiles.Names(), ", ")+", or a YAML file")
	f.Duration("for", 0, "with --on: hold the output on this long, then switch it off")
	f.Float64("slew", 0, "bound on how fast the setpoint moves while on, in V/s (0: none)")
	return cmd
}

func runSupplySet(cmd *cobra.Command, s *settings, args []string) error {
	ctx := cmdContext(cmd)
	on, off := s.boolean("on"), s.boolean("off")
	volts, amps := s.v.GetFloat64("volts"), s.v.GetFloat64("amps")
	hold := s.v.GetDuration("for")
	voltsSet := cmd.Flags().Changed("volts") || volts != 0
	switch {
	case on && off:
		return errors.New("supply set: --on and --off together")
	case hold < 0:
		return fmt.Errorf("supply set: --for %v: must not be negative", hold)
	case hold > 0 && !on:
		return errors.New("supply set: --for needs --on")
	case on && !voltsSet:
		return errors.New("supply set: --on needs --volts (the guard arms OVP just above the setpoint)")
	case !on && !off && !voltsSet:
		return errors.New("supply set: nothing to set: give --volts, --on or --off")
	}
	prof, err := profiles.Load(s.str("profile"))
	if err != nil {
		return err
	}
	lim := supply.LimitsFromProfile(prof)
	lim.SlewVoltsPerSecond = s.v.GetFloat64("slew")
	plan := supply.Plan{MaxVoltage: supply.FromVolts(volts), CurrentLimit: lim.MaxCurrent}
	if amps != 0 || cmd.Flags().Changed("amps") {
		plan.CurrentLimit = supply.FromAmps(amps)
	}
	// Limits are checked before anything is opened, let alone sent.
	if voltsSet {
		if plan.MaxVoltage <= 0 || plan.MaxVoltage > lim.MaxVoltage {
			return fmt.Errorf("supply set: --volts %g: refused, not sent: the limit is above 0 and at most %s (%s)", volts, lim.MaxVoltage, lim.Source)
		}
		if plan.CurrentLimit <= 0 || plan.CurrentLimit > lim.MaxCurrent {
			return fmt.Errorf("supply set: --amps %g: refused, not sent: the limit is above 0 and at most %s (%s)", amps, lim.MaxCurrent, lim.Source)
		}
	}
	ch, raw, done, err := supplyConn(ctx, s, args)
	if err != nil {
		return interrupted(ctx, err)
	}
	defer done()
	w := cmd.OutOrStdout()
	if off && !voltsSet {
		if err := ch.SetOutput(ctx, false); err != nil {
			return interrupted(ctx, err)
		}
		r, err := ch.Measure(ctx)
		if err != nil {
			return interrupted(ctx, err)
		}
		return printMeasurement(w, s, raw, r)
	}
	setUp := func(ctx context.Context, g *supply.Guard) (supply.Reading, error) {
		if err := g.SetVoltage(ctx, plan.MaxVoltage); err != nil {
			return supply.Reading{}, err
		}
		if on {
			if err := g.SetOutput(ctx, true); err != nil {
				return supply.Reading{}, err
			}
		}
		return g.Measure(ctx)
	}
	if hold > 0 {
		err := supply.Run(ctx, ch, lim, plan, func(ctx context.Context, g *supply.Guard) error {
			r, err := setUp(ctx, g)
			if err != nil {
				return err
			}
			if err := printMeasurement(w, s, raw, r); err != nil {
				return err
			}
			return holdOn(ctx, g, hold)
		})
		return interrupted(ctx, err)
	}
	// Without --for the output stays as set when the command ends; any
	// failure on the way (or a panic) switches it off.
	g, err := supply.NewGuard(ch, lim)
	if err != nil {
		return err
	}
	ok := false
	defer func() {
		if !ok {
			_ = g.Shutdown()
		}
	}()
	if err := g.Prepare(ctx, plan); err != nil {
		return interrupted(ctx, err)
	}
	r, err := setUp(ctx, g)
	if err != nil {
		return interrupted(ctx, err)
	}
	ok = true
	return printMeasurement(w, s, raw, r)
}

// holdOn keeps the output on for d, checking for protection trips twice a
// second.
func holdOn(ctx context.Context, g *supply.Guard, d time.Duration) error {
	end := time.NewTimer(d)
	defer end.Stop()
	tick := time.NewTicker(500 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-end.C:
			return nil
		case <-tick.C:
			if _, err := g.Measure(ctx); err != nil {
				return err
			}
		}
	}
}

// ---------------------------------------------------------------------------
// serve

func newSupplyServeCmd(s *settings) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve --dialect D [--model M] [--listen 127.0.0.1:0] [--pty] [--timeline FILE] [--board qemu-stm32 ...]",
		Short: "Serve an emulated instrument over a socket (and a pseudo-terminal), or a whole emulated bench",
		Long: `Start an emulated supply of a dialect (` + strings.Join(emulator.Dialects(), ", ") + `)
and print one JSON line, {"scpi":"127.0.0.1:PORT"} (and "serial":"/dev/pts/N" with --pty), then
serve one client at a time until SIGINT or SIGTERM (exit 0). --timeline writes every output change
(setpoint, current limit, on/off, protection, list steps) as a JSON line with its instant;
--latency, --jitter and --drop-after inject delays and a disconnect.

With --board qemu-stm32 it serves a whole bench (boards/bench/emubench): the emulated output powers
the STM32 wire firmware in QEMU, running in real time (a plugin holds QEMU's instruction clock to
the wall clock); off stops it and resets it with its volatile SRAM scrubbed, on lets it boot; the
rail's voltage is what the firmware's supply reading returns. The JSON line then also has
"port":"/dev/pts/N", the board's serial port, for harness replay --board serial --port. The plan
is --image (harness schedule --image), or the bundled model's plan for --profile (default
qemu-stm32), --scheduler and --trace, as harness replay makes it. --rail capacitor puts the profile's capacitor
and power management between the output and the board (the harvester mode's bench).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runSupplyServe(cmd, s)
		},
	}
	f := cmd.Flags()
	f.String("dialect", "", "the instrument's dialect (required)")
	f.String("model", "", "a model of the dialect (default: its first)")
	f.String("listen", "127.0.0.1:0", "the socket's address")
	f.Bool("pty", false, "also serve on a pseudo-terminal, as an RS-232 instrument")
	f.String("timeline", "", "write the output timeline (JSON Lines) to FILE")
	f.Duration("latency", 0, "delay every answer")
	f.Duration("jitter", 0, "add a uniform random delay up to this")
	f.Int("drop-after", 0, "close the client's connection when it sends its N-th command (0: never)")
	f.Float64("load-ohms", 1000, "the resistive load on every output")
	f.String("board", "", "serve a whole bench: the emulated output powers this board (qemu-stm32)")
	f.String("elf", "", "--board: the STM32 wire firmware built without a plan (default "+defaultNoPlanELF+")")
	f.String("image", "", "--board: the plan image to load (default: the bundled model's plan for --profile, --scheduler, --trace)")
	f.String("profile", "qemu-stm32", "--board: the board's device profile (thresholds, draw, capacitor)")
	f.String("scheduler", defaultScheduler, "--board: the scheduler of the plan")
	f.String("trace", "", "--board: the trace whose statistics the plan is made for (the adaptive scheduler uses them)")
	f.String("rail", "direct", "--board: direct (the output is the board's supply) or capacitor (the profile's capacitor and power management)")
	return cmd
}

func runSupplyServe(cmd *cobra.Command, s *settings) error {
	ctx := cmdContext(cmd)
	cfg := emulator.Config{Dialect: s.str("dialect"), Model: s.str("model"), Latency: s.v.GetDuration("latency"),
		Jitter: s.v.GetDuration("jitter"), LoadOhms: s.v.GetFloat64("load-ohms"), Seed: uint64(time.Now().UnixNano())}
	if cfg.Dialect == "" {
		return errors.New("supply serve: --dialect is required (" + strings.Join(emulator.Dialects(), ", ") + ")")
	}
	if path := s.str("timeline"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			return fmt.Errorf("supply serve: --timeline: %w", err)
		}
		defer f.Close()
		cfg.Timeline = f
	}
	in, err := emulator.New(cfg)
	if err != nil {
		return err
	}
	defer in.Close()
	if n := s.integer("drop-after"); n > 0 {
		in.DisconnectAfter(n)
	}
	if board := s.str("board"); board != "" {
		in.Close()
		return runBenchServe(cmd, s, cfg, board)
	}
	addr, err := in.ServeTCP(ctx, s.str("listen"))
	if err != nil {
		return err
	}
	out := struct {
		SCPI   string `json:"scpi"`
		Serial string `json:"serial,omitempty"`
		Model  string `json:"model"`
	}{SCPI: addr.String(), Model: in.Model()}
	if s.boolean("pty") {
		if out.Serial, err = in.ServePTY(ctx); err != nil {
			return err
		}
	}
	b, _ := json.Marshal(out)
	if _, err := fmt.Fprintln(cmd.OutOrStdout(), string(b)); err != nil {
		return err
	}
	<-ctx.Done()
	return in.TimelineErr()
}

// runBenchServe serves a whole emulated bench: the instrument of cfg whose
// output powers the board.
func runBenchServe(cmd *cobra.Command, s *settings, cfg emulator.Config, board string) error {
	ctx := cmdContext(cmd)
	if board != "qemu-stm32" {
		return fmt.Errorf("supply serve: --board %q: the emulated bench has qemu-stm32 only", board)
	}
	rail, err := emubench.ParseRail(s.str("rail"))
	if err != nil {
		return err
	}
	prof, err := profiles.Load(s.str("profile"))
	if err != nil {
		return err
	}
	elf, err := findNoPlanELF(s)
	if err != nil {
		return err
	}
	img, err := benchImage(ctx, s, prof)
	if err != nil {
		return err
	}
	b, err := emubench.Start(ctx, emubench.Config{Dialect: cfg.Dialect, Model: cfg.Model, Listen: s.str("listen"), ELF: elf, Image: img,
		Profile: prof, Rail: rail, Timeline: cfg.Timeline, Latency: cfg.Latency})
	if err != nil {
		return err
	}
	defer b.Close()
	if n := s.integer("drop-after"); n > 0 {
		b.Instrument().DisconnectAfter(n)
	}
	out := struct {
		SCPI  string `json:"scpi"`
		Port  string `json:"port"`
		Model string `json:"model"`
		Rail  string `json:"rail"`
	}{SCPI: b.SCPI(), Port: b.Port(), Model: b.Instrument().Model(), Rail: rail.String()}
	line, _ := json.Marshal(out)
	if _, err := fmt.Fprintln(cmd.OutOrStdout(), string(line)); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
	case <-b.Machine().Done():
		return fmt.Errorf("supply serve: QEMU exited: %v", b.Machine().Err())
	}
	if err := b.Instrument().TimelineErr(); err != nil {
		return err
	}
	return nil
}

// benchImage is --image, or the bundled model's plan image for --profile,
// --scheduler and --trace, as replay makes it.
func benchImage(ctx context.Context, s *settings, prof *profiles.Profile) ([]byte, error) {
	if path := s.str("image"); path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("--image: %w", err)
		}
		if _, err := plan.DecodeImage(b); err != nil {
			return nil, fmt.Errorf("--image %s: %w", path, err)
		}
		return b, nil
	}
	m, err := model.Parse(bundled.Model(), bundled.ModelName)
	if err != nil {
		return nil, err
	}
	sc, err := sched.Get(s.str("scheduler"))
	if err != nil {
		return nil, err
	}
	opt := sched.Options{ModelBytes: bundled.Model()}
	if tr := s.str("trace"); tr != "" {
		ts, err := openTraceArg(ctx, tr, "", 0)
		if err != nil {
			return nil, err
		}
		defer ts.cleanup()
		st, err := summarizeTrace(ctx, ts.open)
		if err != nil {
			return nil, err
		}
		opt.Trace = &st
	}
	p, err := sc.Schedule(m, prof, opt)
	if err != nil {
		return nil, err
	}
	return plan.EncodeImage(m, p)
}
