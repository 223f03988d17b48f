package nightly

import (
	"errors"
	"testing"

	"github.com/batteryless/harness/reports"
)

const okJSON = `{"inferences":2,"verified":2,"mismatches":0,"latency_s":{"mean":1,"p50":1,"p95":1.5,"max":1.5},"power_cycles":7}`

// TestClassify: the replay's exit codes and JSON make pass, fail or
// error, and an error never passes.
func TestClassify(t *testing.T) {
	cases := []struct {
		name     string
		x        child
		deadline float64
		noInf    string
		outcome  string
		reason   string
	}{
		{"pass", child{Exit: 0, Stdout: []byte(okJSON)}, 0, "fail", reports.OutcomePass, ""},
		{"deadline met", child{Exit: 0, Stdout: []byte(okJSON)}, 2, "fail", reports.OutcomePass, ""},
		{"deadline missed", child{Exit: 0, Stdout: []byte(okJSON)}, 1, "fail", reports.OutcomeFail, "deadline"},
		{"exit 0 without JSON", child{Exit: 0}, 0, "fail", reports.OutcomeError, "no-result"},
		{"exit 0 unverified", child{Exit: 0, Stdout: []byte(`{"inferences":2,"verified":1,"mismatches":0}`)}, 0, "fail", reports.OutcomeFail, "unverified"},
		{"mismatch", child{Exit: 1, Stdout: []byte(`{"inferences":2,"verified":1,"mismatches":1}`)}, 0, "fail", reports.OutcomeFail, "mismatch"},
		{"exit 1 and no inference", child{Exit: 1, Stdout: []byte(`{"inferences":0,"verified":0,"mismatches":0}`)}, 0, "fail", reports.OutcomeFail, "no-inference"},
		{"no inference as error", child{Exit: 4}, 0, "error", reports.OutcomeError, "no-inference"},
		{"no inference", child{Exit: 4}, 0, "fail", reports.OutcomeFail, "no-inference"},
		{"livelock", child{Exit: 3, Stderr: []byte("harness: livelock at layer 2\n")}, 0, "fail", reports.OutcomeFail, "livelock"},
		{"error", child{Exit: 2, Stderr: []byte("harness: qemu died\n")}, 0, "fail", reports.OutcomeError, "exit-2"},
		{"interrupted", child{Exit: 130}, 0, "fail", reports.OutcomeError, "interrupted"},
		{"odd code", child{Exit: 77, Stdout: []byte(okJSON)}, 0, "fail", reports.OutcomeError, "exit-77"},
		{"timeout", child{Exit: -1, TimedOut: true, Stdout: []byte(okJSON)}, 0, "fail", reports.OutcomeError, "timeout"},
		{"signal", child{Exit: -1, Signal: "killed"}, 0, "fail", reports.OutcomeError, "signal"},
		{"not started", child{StartErr: errors.New("no such file")}, 0, "fail", reports.OutcomeError, "start"},
	}
	for _, c := range cases {
		v := classify(c.x, c.deadline, c.noInf)
		if v.Outcome != c.outcome || v.Reason != c.reason {
			t.Errorf("%s: %s (%s) %q, want %s (%s)", c.name, v.Outcome, v.Reason, v.Message, c.outcome, c.reason)
		}
	}
	v := classify(child{Exit: 2, Stderr: []byte("warming up\nharness: port /dev/ttyACM0 lost\n")}, 0, "fail")
	if v.Message != "error (bad input or infrastructure): port /dev/ttyACM0 lost" {
		t.Errorf("message %q: want the replay's last error line", v.Message)
	}
}

func TestParseReplayTolerant(t *testing.T) {
	// Unknown keys are ignored; missing figures stay nil, never 0; the
	// emulated board's "simulated" object is read as the prediction.
	r, err := reports.ParseReplay([]byte(`{"inferences":1,"verified":1,"mismatches":0,"new_key":{"a":1},"simulated":{"power_cycles":3,"power_cycles_error":0.1}}`))
	if err != nil {
		t.Fatal(err)
	}
	if r.LowerBoundS != nil || r.Energy != nil || r.Prediction == nil || *r.Prediction.PowerCycles != 3 {
		t.Errorf("%+v", r)
	}
	if !r.AllVerified() {
		t.Error("1 of 1 verified is all verified")
	}
}
