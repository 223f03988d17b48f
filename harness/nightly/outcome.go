package nightly

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/batteryless/harness/reports"
)

// Exit codes of `harness replay` (the CLI's agreed codes).
const (
	exitOK          = 0
	exitMismatch    = 1
	exitError       = 2
	exitLivelock    = 3
	exitNoInference = 4
	exitInterrupted = 130
)

// verdict is an attempt's classification.
type verdict struct {
	Outcome, Reason, Message string
	Replay                   *reports.Replay
}

// classify turns how a replay ended into pass, fail or error:
//   - exit 0 with every inference verified (and within the deadline): pass;
//   - exit 1 (a mismatch) and 3 (a livelock): fail, the board's or the
//     model's; a latency over the deadline: fail;
//   - exit 4 (the trace ended before any inference completed; also exit 1
//     with no inference, as replays before exit 4 report it): fail, or error
//     when the plan says no_inference: error;
//   - exit 2 (bad input or infrastructure), 130, any other code, a signal,
//     the runner's timeout, no JSON result: error. An error never passes.
func classify(x child, deadlineS float64, noInference string) verdict {
	var v verdict
	if len(x.Stdout) > 0 {
		if r, err := reports.ParseReplay(x.Stdout); err == nil {
			v.Replay = r
		}
	}
	stderr := lastLines(x.Stderr, 1)
	why := ""
	if len(stderr) > 0 {
		why = strings.TrimPrefix(stderr[0], "harness: ")
	}
	errorf := func(reason, format string, args ...any) verdict {
		v.Outcome, v.Reason, v.Message = reports.OutcomeError, reason, fmt.Sprintf(format, args...)
		return v
	}
	failf := func(reason, format string, args ...any) verdict {
		v.Outcome, v.Reason, v.Message = reports.OutcomeFail, reason, fmt.Sprintf(format, args...)
		return v
	}
	withWhy := func(s string) string {
		if why != "" {
			return s + ": " + why
		}
		return s
	}
	switch {
	case x.StartErr != nil:
		return errorf("start", "the replay could not run: %v", x.StartErr)
	case x.TimedOut:
		return errorf("timeout", "%s", withWhy("killed at the cell's timeout"))
	case x.Exit < 0:
		return errorf("signal", "%s", withWhy("killed by "+x.Signal))
	}
	noInf := func() verdict {
		if noInference == reports.OutcomeError {
			return errorf("no-inference", "%s", withWhy("no inference completed: the trace ended first (no_inference: error)"))
		}
		return failf("no-inference", "%s", withWhy("no inference completed: the trace ended first"))
	}
	switch x.Exit {
	case exitOK:
		r := v.Replay
		if r == nil {
			return errorf("no-result", "exit 0 without a JSON result on stdout")
		}
		if !r.AllVerified() {
			if r.Inferences != nil && *r.Inferences == 0 {
				return noInf()
			}
			return failf("unverified", "exit 0, but not every inference was verified (%s)", counts(r))
		}
		if deadlineS > 0 && r.Latency != nil && r.Latency.Max != nil && *r.Latency.Max > deadlineS {
			return failf("deadline", "latency %.3g s over the deadline of %.3g s", *r.Latency.Max, deadlineS)
		}
		v.Outcome = reports.OutcomePass
		return v
	case exitMismatch:
		if r := v.Replay; r != nil && r.Inferences != nil && *r.Inferences == 0 && (r.Mismatches == nil || *r.Mismatches == 0) {
			return noInf()
		}
		return failf("mismatch", "%s", withWhy("an output differed from the reference"))
	case exitLivelock:
		return failf("livelock", "%s", withWhy("livelock"))
	case exitNoInference:
		return noInf()
	case exitInterrupted:
		return errorf("interrupted", "%s", withWhy("the replay was interrupted"))
	case exitError:
		return errorf("exit-2", "%s", withWhy("error (bad input or infrastructure)"))
	}
	return errorf("exit-"+strconv.Itoa(x.Exit), "%s", withWhy("unexpected exit code "+strconv.Itoa(x.Exit)))
}

func counts(r *reports.Replay) string {
	n := func(p *int) string {
		if p == nil {
			return "?"
		}
		return strconv.Itoa(*p)
	}
	return fmt.Sprintf("%s inferences, %s verified, %s mismatches", n(r.Inferences), n(r.Verified), n(r.Mismatches))
}
