package replay

import (
	"bytes"
	"cmp"

	"github.com/batteryless/harness/harness/model"
	"github.com/batteryless/harness/reports"
)

// trackBound notes when the harvested energy reaches the running
// inference's lower-bound target; h0 is the harvested counter before an
// advance of adv seconds at constant harvest.
func (en *engine) trackBound(h0, adv float64) {
	if en.inference < 0 || en.lbAt >= 0 {
		return
	}
	h1 := en.sys.Harvested()
	if h1 < en.lbTarget {
		return
	}
	t1 := en.sys.Time()
	if rate := (h1 - h0); rate > 0 && adv > 0 && h0 < en.lbTarget {
		// Harvest is constant over the advance: interpolate exactly.
		t1 -= adv * (h1 - en.lbTarget) / rate
	}
	en.lbAt = t1
}

func (en *engine) finishInference(output []byte) {
	end := en.sys.Time()
	lb := en.res.MinComputeS
	if en.lbAt >= 0 {
		lb = max(lb, en.lbAt-en.infStart)
	}
	en.lbSum += lb
	// The output is verified once the board's data operations up to here
	// are applied and the reference is there (see verify).
	rec := &record{inference: true, inf: reports.InferenceRecord{Type: "inference", Index: en.inference, Start: en.infStart, End: end,
		Latency: end - en.infStart, PowerCycles: en.infCycles, LowerBound: lb}}
	if en.snap != nil {
		en.snap.Snapshot(func(out []byte) { rec.out, rec.snapped = append([]byte(nil), out...), true })
	} else {
		rec.out, rec.snapped = output, true
	}
	en.records = append(en.records, rec)
	en.res.Inferences++
	en.res.Latencies = append(en.res.Latencies, rec.inf.Latency)
	en.res.InferenceCycles = append(en.res.InferenceCycles, en.infCycles)
	en.inference = -1
}

// record is a log record waiting for the verification of an inference
// before it (or its own).
type record struct {
	inference bool
	inf       reports.InferenceRecord
	cycle     reports.CycleRecord
	out       []byte // the inference's output, once snapped
	snapped   bool
}

// logCycle logs a power cycle, after the inferences still being verified.
func (en *engine) logCycle(c reports.CycleRecord) {
	if len(en.records) > 0 {
		en.records = append(en.records, &record{cycle: c})
		return
	}
	if en.cfg.Log != nil { // (a record passed as an interface is copied to the heap)
		en.cfg.Log.Write(c)
	}
}

// verify checks the outputs of the finished inferences against the
// reference, bit for bit, and logs the records waiting for them, in order.
// Unless block, it stops at an inference whose output or reference is not
// there yet (the board's data operations wait for the reference executor's
// layers, see sim.Board.SetSeeds).
func (en *engine) verify(block bool) error {
	for len(en.records) > 0 {
		r := en.records[0]
		if r.inference {
			if !r.snapped && block && en.snap != nil {
				en.snap.FlushSnapshots()
			}
			if !r.snapped || !block && !en.ref.ready() {
				return nil
			}
			ref, err := en.ref.wait()
			if err != nil {
				return err
			}
			ok := bytes.Equal(r.out, ref)
			r.inf.Verified, r.inf.Argmax = ok, Argmax(model.BytesAsInt8(r.out))
			if ok {
				en.res.Verified++
			} else {
				en.res.Mismatches++
			}
			if en.cfg.Log != nil {
				en.cfg.Log.Write(r.inf)
			}
		} else if en.cfg.Log != nil {
			en.cfg.Log.Write(r.cycle)
		}
		en.records[0] = nil
		en.records = en.records[1:]
	}
	en.records = en.records[:0]
	return nil
}

// Argmax is the index of the largest value (the first of equals): the
// class an output picks (int8 values as the board wrote them, or their
// real values).
func Argmax[T cmp.Ordered](v []T) int {
	best := 0
	for i, x := range v {
		if x > v[best] {
			best = i
		}
	}
	return best
}
