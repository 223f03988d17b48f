package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/batteryless/harness/boards"
	"github.com/batteryless/harness/boards/profiles"
	"github.com/batteryless/harness/harness/digest"
	"github.com/batteryless/harness/harness/model"
	"github.com/batteryless/harness/harness/outfile"
	"github.com/batteryless/harness/harness/plan"
	"github.com/batteryless/harness/harness/power"
	"github.com/batteryless/harness/harness/replay"
	"github.com/batteryless/harness/harness/sched"
	"github.com/batteryless/harness/reports"
	"github.com/batteryless/harness/traces"
	"github.com/spf13/cobra"
)

// What the commands that run a model under a trace share: finding the
// trace (a file, a bundled trace, or standard input spooled once), loading
// the model, input and profile, scheduling, the static checks, the log
// with its header.

// defaultTrace is the bundled trace replayed when none is named.
const defaultTrace = "rf-office"

// defaultScheduler is the scheduler every command uses unless told: the
// harness's own.
const defaultScheduler = "adaptive"

// traceSource is a trace argument resolved: how to open it from its start,
// its name for people, and its file (for hashing and the inputs an output
// must not overwrite; "" for a bundled trace).
type traceSource struct {
	open func() (traces.Reader, error)
	name string
	file string
	// cleanup removes a spooled copy of standard input or a pipe.
	cleanup func()
}

// openTraceArg resolves a trace argument: a file, "-" (standard input) or a
// pipe (read once, into a temporary file, so that the statistics pass and
// the replay read the same bytes), or a bundled trace's name.
func openTraceArg(ctx context.Context, arg, format string, load float64) (*traceSource, error) {
	if arg == "" {
		arg = defaultTrace
	}
	opts := traces.Options{Format: format, LoadOhms: load}
	if arg == "-" || isStream(arg) {
		path, err := spool(ctx, arg)
		if err != nil {
			return nil, err
		}
		name := arg
		if arg == "-" {
			name = "stdin"
		}
		return &traceSource{name: name, file: path, cleanup: func() { os.Remove(path) },
			open: func() (traces.Reader, error) {
				r, err := traces.Open(path, opts)
				if err != nil {
					return nil, fmt.Errorf("%s: %w", name, err)
				}
				return r, nil
			}}, nil
	}
	if _, err := os.Stat(arg); err == nil {
		return &traceSource{name: arg, file: arg, cleanup: func() {},
			open: func() (traces.Reader, error) { return traces.Open(arg, opts) }}, nil
	}
	name := strings.TrimPrefix(arg, "bundled:")
	if _, err := traces.OpenBundled(name); err == nil {
		return &traceSource{name: "bundled:" + name, cleanup: func() {},
			open: func() (traces.Reader, error) { return traces.OpenBundled(name) }}, nil
	}
	return nil, fmt.Errorf("trace %s: no such file, and no bundled trace of that name (bundled: %s)", arg, strings.Join(traces.Bundled(), ", "))
}

// isStream reports whether path is a pipe, a socket or a character device:
// a file that can be read only once.
func isStream(path string) bool {
	st, err := os.Stat(path)
	if err != nil {
		return false
	}
	return st.Mode()&(os.ModeNamedPipe|os.ModeSocket|os.ModeCharDevice) != 0
}

// spool copies standard input ("-") or a stream into a temporary file, in
// blocks, watching ctx (a pipe that never ends is interrupted by Ctrl-C).
func spool(ctx context.Context, arg string) (string, error) {
	tmp, err := os.CreateTemp("", "harness-trace-*")
	if err != nil {
		return "", fmt.Errorf("trace %s: %w", arg, err)
	}
	// A read of a pipe blocks until its writer writes or closes: the reads
	// run on a goroutine of their own, so that Ctrl-C ends the wait.
	type chunk struct {
		b   []byte
		err error
	}
	chunks := make(chan chunk)
	go func() {
		// Opening a named pipe waits for its writer too.
		var in io.Reader = os.Stdin
		if arg != "-" {
			f, err := os.Open(arg)
			if err != nil {
				select {
				case chunks <- chunk{err: err}:
				case <-ctx.Done():
				}
				return
			}
			defer f.Close()
			in = f
		}
		for {
			buf := make([]byte, 256<<10)
			n, err := in.Read(buf)
			select {
			case chunks <- chunk{buf[:max(n, 0)], err}:
			case <-ctx.Done():
				return
			}
			if err != nil {
				return
			}
		}
	}()
	fail := func(err error) (string, error) {
		tmp.Close()
		os.Remove(tmp.Name())
		return "", err
	}
	for {
		var c chunk
		select {
		case <-ctx.Done():
			return fail(fmt.Errorf("trace %s: reading: %w", arg, ctx.Err()))
		case c = <-chunks:
		}
		if len(c.b) > 0 {
			if _, err := tmp.Write(c.b); err != nil {
				return fail(fmt.Errorf("trace %s: spooling to %s: %w", arg, tmp.Name(), err))
			}
		}
		if errors.Is(c.err, io.EOF) {
			break
		}
		if c.err != nil {
			return fail(fmt.Errorf("trace %s: %w", arg, c.err))
		}
	}
	if err := tmp.Close(); err != nil {
		os.Remove(tmp.Name())
		return "", err
	}
	return tmp.Name(), nil
}

// findNoPlanELF returns --elf, or the default build if it exists.
func findNoPlanELF(s *settings) (string, error) {
	if e := s.str("elf"); e != "" {
		if _, err := os.Stat(e); err != nil {
			return "", fmt.Errorf("--elf: %w", err)
		}
		return e, nil
	}
	if _, err := os.Stat(defaultNoPlanELF); err != nil {
		return "", fmt.Errorf("no STM32 firmware at %s: build it with `make -C firmware stm32f4` (Debian packages gcc-arm-none-eabi libnewlib-arm-none-eabi) or give --elf", defaultNoPlanELF)
	}
	return defaultNoPlanELF, nil
}

// summarizeTrace reads a trace once for its statistics, watching ctx.
func summarizeTrace(ctx context.Context, open func() (traces.Reader, error)) (traces.Stats, error) {
	r, err := open()
	if err != nil {
		return traces.Stats{}, err
	}
	if c, ok := r.(io.Closer); ok {
		defer c.Close()
	}
	return traces.Summarize(&ctxReader{ctx: ctx, r: r}, 0)
}

// ctxReader stops a trace's reading when ctx is done (checked every 4,096
// samples: a 2 GB trace is read in seconds, and Ctrl-C must stop it).
type ctxReader struct {
	ctx context.Context
	r   traces.Reader
	n   int
}

func (c *ctxReader) Meta() traces.Meta { return c.r.Meta() }

func (c *ctxReader) Next() (traces.Sample, error) {
	c.n++
	if c.n&4095 == 0 {
		if err := c.ctx.Err(); err != nil {
			return traces.Sample{}, err
		}
	}
	return c.r.Next()
}

// replayPrep is what a run under a trace needs before it starts, on any
// board: the trace, the model and its input, the profile, the scheduler's
// plan (checked against livelock and against a harvest that never turns the
// board on).
type replayPrep struct {
	trace     *traceSource
	stats     traces.Stats
	m         *model.Model
	modelPath string
	input     []byte
	inputName string
	prof      *profiles.Profile
	sc        sched.Scheduler
	p         *plan.Plan
	pc        power.Config
}

// prepareReplay loads and schedules what the settings say: the trace,
// --model, --input, --profile (the board's default profile unless the user
// set one) and --scheduler. The caller calls r.trace.cleanup.
func prepareReplay(cmd *cobra.Command, s *settings, traceArg string, board boards.Info) (r *replayPrep, err error) {
	ctx := cmd.Context()
	ts, err := openTraceArg(ctx, traceArg, s.str("format"), s.v.GetFloat64("load"))
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			ts.cleanup()
		}
	}()
	r = &replayPrep{trace: ts}
	if r.m, r.input, r.modelPath, err = loadModelInput(s); err != nil {
		return nil, err
	}
	r.inputName = inputName(s.str("input"), r.modelPath)
	if r.prof, err = loadProfileFlag(cmd, s, board.DefaultProfile); err != nil {
		return nil, err
	}
	if r.sc, err = sched.Get(s.str("scheduler")); err != nil {
		return nil, err
	}
	// A first pass over the trace: its statistics for the schedulers that
	// use them, its length for the progress bar and its peak power for the
	// static checks.
	if r.stats, err = summarizeTrace(ctx, r.trace.open); err != nil {
		return nil, err
	}
	if r.p, err = r.sc.Schedule(r.m, r.prof, sched.Options{ModelBytes: modelFileBytes(r.modelPath), Trace: &r.stats}); err != nil {
		return nil, err
	}
	if r.p.ReadsSupply() && !board.Has(boards.CapSenseSupply) {
		return nil, fmt.Errorf("scheduler %s uses the run-time voltage rule, which board %s cannot run (it does not read its supply): pick another scheduler", r.sc.Name(), board.Name)
	}
	r.pc = replay.PowerConfig(r.prof)
	if err := replay.CheckTurnOn(r.pc, r.stats.MaxW); err != nil {
		return nil, fmt.Errorf("trace %s on %s: %w", r.trace.name, r.prof.Name, err)
	}
	if err := replay.CheckPlan(r.p, r.prof, r.pc, r.stats.MaxW); err != nil {
		return nil, fmt.Errorf("%s with %s on %s: %w", r.m.Name, r.sc.Name(), r.prof.Name, err)
	}
	return r, nil
}

// loadProfileFlag loads --profile, or def (if not "") when the user set no
// profile by flag, environment or file.
func loadProfileFlag(cmd *cobra.Command, s *settings, def string) (*profiles.Profile, error) {
	name := s.str("profile")
	if def != "" && !cmd.Flags().Changed("profile") && !s.v.IsSet("profile") {
		name = def
	}
	return profiles.Load(name)
}

// openLog opens --log's JSON Lines writer (nil without --log) and returns
// the function that puts the file in place (call it on every way out: the
// log of a run that failed says how it failed). The log must not be one of
// the run's inputs: it is written beside its path, and renamed there.
func openLog(s *settings, inputs ...string) (*reports.LogWriter, func(), error) {
	path := s.str("log")
	if path == "" {
		return nil, func() {}, nil
	}
	f, err := outfile.Create(path, append(inputs, s.str("model"), s.str("input"), s.str("profile"), s.str("config"))...)
	if err != nil {
		return nil, nil, err
	}
	return reports.NewLogWriter(f), func() { f.Commit() }, nil
}

// header is the log's first record: what ran, with the hashes of what it
// ran on, so that a log read alone says where it came from.
func (r *replayPrep) header(boardName string, seed int64) *reports.HeaderRecord {
	h := &reports.HeaderRecord{Type: "header", Version: buildVersion().Version, Board: boardName,
		Profile: r.prof.Name, ProfileSHA256: digest.Bytes(r.prof.YAML("")),
		Model: r.m.Name, ModelSHA256: digest.Bytes(modelFileBytes(r.modelPath)),
		Input: r.inputName, InputSHA256: digest.Bytes(r.input),
		Scheduler: r.p.Scheduler, Trace: r.trace.name, Seed: seed,
		Started: time.Now().UTC().Format(time.RFC3339), Command: os.Args}
	if img, err := plan.EncodeImage(r.m, r.p); err == nil {
		h.PlanSHA256 = digest.Bytes(img)
	}
	if r.trace.file != "" {
		h.TraceSHA256, _ = digest.File(r.trace.file)
		if r.trace.name != "stdin" {
			if abs, err := filepath.Abs(r.trace.file); err == nil {
				h.Trace = abs
			}
		}
	} else if tr, err := r.trace.open(); err == nil {
		// A bundled trace: the hash of its samples as canonical CSV.
		hw := sha256.New()
		traces.WriteCSV(hw, tr)
		h.TraceSHA256 = hex.EncodeToString(hw.Sum(nil))
	}
	return h
}
