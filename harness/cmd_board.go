package main

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/batteryless/harness/boards"
	"github.com/batteryless/harness/boards/profiles"
	"github.com/batteryless/harness/boards/serialboard"
	"github.com/batteryless/harness/harness/link"
	"github.com/batteryless/harness/harness/model"
	"github.com/batteryless/harness/harness/plan"
	"github.com/batteryless/harness/harness/refexec"
	"github.com/batteryless/harness/harness/sched"
	"github.com/batteryless/harness/harness/wire"
	"github.com/batteryless/harness/reports"
)

// boardIdentity is a board's IDENTITY, for people and machines.
type boardIdentity struct {
	Name       string `json:"name"`
	Firmware   string `json:"firmware"`
	NVMBytes   uint32 `json:"nvm_bytes"`
	ImageBytes uint32 `json:"image_capacity_bytes"`
	Boots      uint32 `json:"boots"`
	RxErrors   uint16 `json:"rx_errors"`
	Window     uint8  `json:"window"`
	ImageValid bool   `json:"image_valid"`
}

func identityOf(id *wire.Identity) boardIdentity {
	return boardIdentity{Name: id.Name, Firmware: fmt.Sprintf("%d.%d.%d", id.Firmware>>16, id.Firmware>>8&0xFF, id.Firmware&0xFF),
		NVMBytes: id.NVMBytes, ImageBytes: id.ImageBytes, Boots: id.Boots, RxErrors: id.RxErrors, Window: id.Window,
		ImageValid: id.Flags&wire.IdentityImageValid != 0}
}

// boardInference is one inference on the board.
type boardInference struct {
	Number      uint32  `json:"number"`
	Verified    bool    `json:"verified"`
	Mismatch    string  `json:"mismatch,omitempty"` // the first difference from the reference
	Tasks       int     `json:"tasks"`              // TASK_DONE events
	Commits     int     `json:"commits"`
	Boots       int     `json:"boots"`
	Hangs       int     `json:"hangs"`
	EventsLost  int     `json:"events_lost"`
	TotalCycles uint64  `json:"total_cycles"` // the sum of the TASK_DONE cycles
	WallS       float64 `json:"wall_s"`       // SET_INPUT to the output read back
}

// boardTask is one task's cycles as the profile predicts them (the plan's
// cycles and commit cycles: what the simulated board spends) and as the
// board measured them (the mean of its TASK_DONEs over the inferences).
type boardTask struct {
	Task      int      `json:"task"`
	Layer     int      `json:"layer"`
	Op        string   `json:"op"`
	Predicted float64  `json:"predicted_cycles"`
	Measured  float64  `json:"measured_cycles"`
	Error     *float64 `json:"error,omitempty"` // (predicted - measured) / measured; absent when measured is 0
}

type boardReport struct {
	Port      string        `json:"port"`
	Identity  boardIdentity `json:"identity"`
	Model     string        `json:"model"`
	Profile   string        `json:"profile,omitempty"`
	Scheduler string        `json:"scheduler,omitempty"`
	PlanTasks int           `json:"plan_tasks,omitempty"`
	Deployed  bool          `json:"deployed"`
	// ImageBytes is the plan image's size (deployed, or compared).
	ImageBytes int              `json:"image_bytes,omitempty"`
	DeployS    float64          `json:"deploy_s,omitempty"`
	Inferences []boardInference `json:"inferences"`
	Mismatches int              `json:"mismatches"`
	// Tasks compares the profile's prediction with the board's cycles
	// when the plan on the board is known; NoComparison says why not.
	Tasks        []boardTask `json:"tasks,omitempty"`
	MaxTaskError float64     `json:"max_task_error,omitempty"`
	NoComparison string      `json:"no_comparison,omitempty"`
	Link         boardLink   `json:"link"`
	// Error says why the run stopped before its inferences were done
	// (the inferences before it are reported all the same).
	Error string `json:"error,omitempty"`
}

// boardLink is what happened on the line (link.Stats).
type boardLink struct {
	FramesSent      int64 `json:"frames_sent"`
	Retransmissions int64 `json:"retransmissions"`
	BadFrames       int64 `json:"bad_frames"`
	EventsMissed    int64 `json:"events_missed"`
	PortLosses      int64 `json:"port_losses"`
}

func newBoardCmd(s *settings) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "board --port P [--model M] [--input F] [--profile P] [--scheduler S] [--deploy] [--inferences N]",
		Short: "Run verified inferences on a board over its serial port (wire protocol)",
		Long: `Talk to a board that runs the wire firmware (firmware/PROTOCOL.md) on --port: the
host board program over a pseudo-terminal, QEMU's pty, an MSP430FR5994 or an STM32 on a USB
adapter. HELLO and print its identity; with --deploy, schedule the model for the profile with
the scheduler (as harness schedule --image does) and deploy the plan image; then run
--inferences inferences on bench power, verify every output against the reference executor,
and print per inference the tasks, commits, boots, cycles and wall time, and per task the
board's cycles next to the profile's prediction (the plan's cycles and commit cycles) when the
plan on the board is known: deployed now, or the plan tag in the board's NVM equals the plan's.
A board that stays silent is an error within the link's retries. Exits with 1 when an output
differs from the reference.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runBoard(cmd, s)
		},
	}
	f := cmd.Flags()
	f.String("board", "serial", "board: serial (a board running the wire firmware on --port)")
	f.String("port", "", "the board's serial port, e.g. /dev/ttyUSB0 (also HARNESS_PORT, or port: in --config)")
	f.Int("baud", 115200, "the serial port's baud rate")
	f.String("model", "", "model file (default: the bundled model)")
	f.String("input", "", "input tensor as raw bytes (default: the bundled input, for the bundled model)")
	f.String("profile", "", "device profile to schedule for and predict with: "+strings.Join(profiles.Names(), ", ")+", or a YAML file (default: the profile the board names in its IDENTITY)")
	f.String("scheduler", defaultScheduler, "scheduler: "+strings.Join(sched.Names(), ", "))
	f.Bool("deploy", false, "deploy the plan image of the model for the profile before the inferences")
	f.Int("inferences", 1, "inferences to run")
	return cmd
}

func runBoard(cmd *cobra.Command, s *settings) error {
	ctx := cmd.Context()
	if ctx == nil {
		ctx = context.Background()
	}
	// The kind of board, through the registry: one on a serial line that
	// runs inferences on bench power.
	drv, err := boards.Lookup(s.str("board"))
	if err != nil {
		return fmt.Errorf("board: --board: %w", err)
	}
	if info := drv.Info(); !info.Has(boards.CapBench) || info.Name != "serial" {
		return fmt.Errorf("board: --board %s: this command drives a board on a serial port (serial); %s runs through harness replay", info.Name, info.Name)
	}
	port := s.str("port")
	if port == "" {
		return errors.New("board: --port is required (the board's serial port, e.g. /dev/ttyUSB0; or HARNESS_PORT)")
	}
	n := s.integer("inferences")
	if n < 1 {
		return fmt.Errorf("board: --inferences %d: at least 1", n)
	}
	deploy := s.boolean("deploy")
	m, input, modelPath, err := loadModelInput(s)
	if err != nil {
		return err
	}
	want, err := refexec.New(m).Run(input)
	if err != nil {
		return fmt.Errorf("board: the reference executor: %w", err)
	}
	baud := s.integer("baud")
	if baud <= 0 {
		return fmt.Errorf("board: --baud %d: want a positive rate (115200, 9600, ...)", baud)
	}
	l, err := link.Open(ctx, link.Config{Path: port, Baud: baud})
	if err != nil {
		return fmt.Errorf("board: %w", err)
	}
	defer l.Close()
	outBytes := m.OutputTensor().Bytes()
	brd := serialboard.New(l, serialboard.Config{OutputBytes: outBytes})
	t0 := time.Now()
	id, err := brd.Hello(ctx)
	if err != nil {
		var ce *link.CommandError
		if errors.As(err, &ce) && errors.Is(err, link.ErrTimeout) {
			if st := l.Stats(); st.BytesReceived > 0 && st.FramesReceived-st.Unknown == 0 {
				return fmt.Errorf("board: %s: %d bytes received but no valid frame in %.1f s (%d HELLOs sent): wrong baud rate (this side %d)?",
					port, st.BytesReceived, time.Since(t0).Seconds(), ce.Tries, baud)
			}
			return fmt.Errorf("board: %s: no answer to HELLO in %.1f s (%d transmissions): is a board running the wire firmware at %d baud on that port?",
				port, time.Since(t0).Seconds(), ce.Tries, baud)
		}
		return fmt.Errorf("board: %s: %w", port, err)
	}
	rep := &boardReport{Port: port, Identity: identityOf(id), Model: m.Name}
	w := cmd.OutOrStdout()
	if !s.json() {
		if err := printIdentity(w, port, rep.Identity); err != nil {
			return err
		}
	}

	// The plan: deployed now, or compared with what the board holds.
	profileHint := ""
	if s.str("profile") == "" && id.Name != "" {
		s.v.SetDefault("profile", id.Name)
		profileHint = " (the profile is the one the board names in its IDENTITY; --profile gives another)"
	}
	var p *plan.Plan
	var img []byte
	pm, prof, pl, perr := schedulePlan(ctx, s, modelPath)
	if perr == nil {
		img, perr = plan.EncodeImage(pm, pl)
	}
	switch {
	case perr != nil && deploy:
		return fmt.Errorf("board: --deploy: %w%s", perr, profileHint)
	case perr != nil:
		rep.NoComparison = fmt.Sprintf("no plan to compare with: %v%s", oneLine(perr.Error()), profileHint)
	default:
		p = pl
		rep.Profile, rep.Scheduler, rep.PlanTasks, rep.ImageBytes = prof.Name, pl.Scheduler, len(pl.Tasks), len(img)
	}
	if deploy {
		t0 := time.Now()
		if err := brd.Deploy(ctx, img); err != nil {
			return fmt.Errorf("board: %s: %w", port, err)
		}
		rep.Deployed, rep.DeployS = true, time.Since(t0).Seconds()
		if !s.json() {
			fmt.Fprintf(w, "deployed %s's plan for %s (%s, %d tasks): %d bytes in %.2f s\n", m.Name, prof.Name, pl.Scheduler, len(pl.Tasks), len(img), rep.DeployS)
		}
	} else if id.Flags&wire.IdentityImageValid == 0 {
		return fmt.Errorf("board: %s: %s has no valid plan image: deploy one with --deploy", port, nameOr(id.Name))
	}

	// Inference numbers: after the one the board started last (the NVM
	// header's plan.StartedOffset), which it would not run again.
	hdr, err := l.ReadNVM(ctx, plan.StartedOffset, 4)
	if err != nil {
		return fmt.Errorf("board: %s: READ_NVM: %w", port, err)
	}
	first := binary.LittleEndian.Uint32(hdr) + 1
	if first == 0 {
		first = 1 // 0 is no inference
	}
	cfg := serialboard.Config{OutputBytes: outBytes}
	if rep.Deployed {
		cfg.Tasks = len(p.Tasks)
	}
	run := serialboard.New(l, cfg)
	var infs []*serialboard.Inference
	var runErr error
	for i := range n {
		num := first + uint32(i)
		drainEvents(l)
		t0 := time.Now()
		inf, err := run.Infer(ctx, num, input, &serialboard.Bench{}, nil)
		if err != nil {
			// What was verified before is reported with the error.
			rep.Error = fmt.Sprintf("inference %d: %v", num, err)
			runErr = fmt.Errorf("board: %s: after %d verified inferences: %w", port, len(rep.Inferences)-rep.Mismatches, err)
			break
		}
		bi := boardInference{Number: num, Tasks: len(inf.Tasks), Commits: inf.Commits, Boots: inf.Boots, Hangs: inf.Hangs,
			EventsLost: inf.EventsLost, WallS: time.Since(t0).Seconds()}
		bi.Verified, bi.Mismatch = serialboard.Verify(inf.Output, want)
		if !bi.Verified {
			rep.Mismatches++
		}
		for _, t := range inf.Tasks {
			bi.TotalCycles += uint64(t.Cycles)
		}
		rep.Inferences = append(rep.Inferences, bi)
		infs = append(infs, inf)
	}

	// Per task: the profile's prediction against the board's cycles.
	if p != nil && runErr == nil {
		if why := samePlan(ctx, l, p, rep.Deployed, infs); why != "" {
			rep.NoComparison = why
		} else {
			rep.Tasks, rep.MaxTaskError = compareTasks(pm, p, infs)
		}
	}
	st := l.Stats()
	rep.Link = boardLink{FramesSent: st.FramesSent, Retransmissions: st.Retransmissions, BadFrames: st.BadFrames, EventsMissed: st.EventsMissed, PortLosses: st.PortLosses}
	if s.json() {
		err = reports.JSON(w, rep)
	} else {
		err = printBoard(w, rep)
	}
	if err != nil {
		return err
	}
	if runErr != nil && rep.Mismatches == 0 {
		return runErr
	}
	if rep.Mismatches > 0 {
		for _, bi := range rep.Inferences {
			if !bi.Verified {
				return &exitError{code: 1, msg: fmt.Sprintf("board: %d of %d inferences differ from the reference executor's output (inference %d: %s)",
					rep.Mismatches, len(rep.Inferences), bi.Number, bi.Mismatch)}
			}
		}
	}
	return nil
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return strconv.Itoa(n) + " " + what + "s"
}

func nameOr(name string) string {
	if name == "" {
		return "the board"
	}
	return "board " + name
}

// drainEvents drops the board events the link holds: they are not the
// next inference's (a BOOT at the board's start, the last one's tail).
func drainEvents(l *link.Link) {
	for {
		select {
		case _, ok := <-l.Events():
			if !ok {
				return
			}
		default:
			return
		}
	}
}

// samePlan says why the inferences are not runs of plan p ("" if they are):
// p was deployed now, or the board's NVM header (written at START) carries
// p's plan tag, and every TASK_DONE is a task of p.
func samePlan(ctx context.Context, l *link.Link, p *plan.Plan, deployed bool, infs []*serialboard.Inference) string {
	if !deployed {
		hdr, err := l.ReadNVM(ctx, plan.MagicOffset, plan.PlanTagOffset+4)
		if err != nil {
			return fmt.Sprintf("the board's NVM header could not be read (%v): its plan is unknown, no per-task comparison", err)
		}
		magic, tag := binary.LittleEndian.Uint32(hdr[plan.MagicOffset:]), binary.LittleEndian.Uint32(hdr[plan.PlanTagOffset:])
		if magic != plan.Magic {
			return "the board's NVM header has no plan tag: its plan is unknown, no per-task comparison"
		}
		if tag != p.Tag() {
			return fmt.Sprintf("the board runs another plan (tag %#08x, this model, profile and scheduler give %#08x): no per-task comparison; --deploy deploys this one", tag, p.Tag())
		}
	}
	for _, inf := range infs {
		for _, t := range inf.Tasks {
			if int(t.Task) >= len(p.Tasks) {
				return fmt.Sprintf("the board reported task %d, the plan has %d tasks: no per-task comparison", t.Task, len(p.Tasks))
			}
		}
	}
	return ""
}

// compareTasks pairs each task's predicted cycles with the mean of the
// board's over the inferences (a task's last TASK_DONE in each).
func compareTasks(m *model.Model, p *plan.Plan, infs []*serialboard.Inference) ([]boardTask, float64) {
	sum := make([]float64, len(p.Tasks))
	cnt := make([]int, len(p.Tasks))
	for _, inf := range infs {
		last := map[uint32]uint32{}
		for _, t := range inf.Tasks {
			last[t.Task] = t.Cycles
		}
		for task, c := range last {
			sum[task] += float64(c)
			cnt[task]++
		}
	}
	var out []boardTask
	worst := 0.0
	for i, t := range p.Tasks {
		bt := boardTask{Task: i, Layer: t.Layer, Op: m.Layers[t.Layer].Op.String(), Predicted: t.Cycles + t.CommitCycles}
		if cnt[i] > 0 {
			bt.Measured = sum[i] / float64(cnt[i])
		}
		if bt.Measured > 0 {
			e := (bt.Predicted - bt.Measured) / bt.Measured
			bt.Error = &e
			worst = math.Max(worst, math.Abs(e))
		}
		out = append(out, bt)
	}
	return out, worst
}

func printIdentity(w io.Writer, port string, id boardIdentity) error {
	valid := "no"
	if id.ImageValid {
		valid = "yes"
	}
	fmt.Fprintf(w, "board on %s\n", port)
	return reports.Table(w, []string{"name", "firmware", "NVM bytes", "image capacity bytes", "boots", "rx errors", "image valid"},
		[][]string{{id.Name, id.Firmware, strconv.FormatUint(uint64(id.NVMBytes), 10), strconv.FormatUint(uint64(id.ImageBytes), 10),
			strconv.FormatUint(uint64(id.Boots), 10), strconv.Itoa(int(id.RxErrors)), valid}}, nil)
}

func printBoard(w io.Writer, rep *boardReport) error {
	var rows [][]string
	for _, bi := range rep.Inferences {
		v := "yes"
		if !bi.Verified {
			v = "NO"
		}
		rows = append(rows, []string{strconv.FormatUint(uint64(bi.Number), 10), v, strconv.Itoa(bi.Tasks), strconv.Itoa(bi.Commits),
			strconv.Itoa(bi.Boots), strconv.FormatUint(bi.TotalCycles, 10), strconv.FormatFloat(bi.WallS, 'f', 3, 64)})
	}
	if rep.Error != "" {
		rows = append(rows, []string{"-", "stopped", "", "", "", "", rep.Error})
	}
	if err := reports.Table(w, []string{"inference", "verified", "tasks", "commits", "boots", "total cycles", "wall s"}, rows, nil); err != nil {
		return err
	}
	for _, bi := range rep.Inferences {
		if !bi.Verified {
			fmt.Fprintf(w, "inference %d differs from the reference executor: %s\n", bi.Number, bi.Mismatch)
		}
	}
	if rep.Tasks != nil {
		rows = rows[:0]
		for _, t := range rep.Tasks {
			e := "-"
			if t.Error != nil {
				e = fmt.Sprintf("%+.1f %%", 100**t.Error)
			}
			rows = append(rows, []string{strconv.Itoa(t.Task), strconv.Itoa(t.Layer), t.Op, strconv.FormatFloat(t.Predicted, 'f', 0, 64),
				strconv.FormatFloat(t.Measured, 'f', 0, 64), e})
		}
		if err := reports.Table(w, []string{"task", "layer", "operator", "predicted cycles", "measured cycles", "error"}, rows, nil); err != nil {
			return err
		}
		how := "deployed now"
		if !rep.Deployed {
			how = "the plan tag in the board's NVM is this plan's"
		}
		fmt.Fprintf(w, "per task: the %s profile's cycles (%s plan, %s; commits included) against the board's mean over %s, largest error %.1f %%\n",
			rep.Profile, rep.Scheduler, how, plural(len(rep.Inferences), "inference"), 100*rep.MaxTaskError)
	} else if rep.NoComparison != "" {
		fmt.Fprintf(w, "per task: %s\n", rep.NoComparison)
	}
	verdict := "every output verified"
	if rep.Mismatches > 0 {
		verdict = fmt.Sprintf("%d of %d outputs DIFFER from the reference", rep.Mismatches, len(rep.Inferences))
	}
	fmt.Fprintf(w, "%s on %s (%s): %s, %s\n", rep.Model, rep.Port, nameOr(rep.Identity.Name), plural(len(rep.Inferences), "inference"), verdict)
	return nil
}
