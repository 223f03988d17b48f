package emulated

import (
	"errors"
	"io"
	"sort"

	"github.com/batteryless/harness/traces"
)

// TraceHarvest reads a whole trace into a step-hold harvest function (the
// power of the last sample at or before t; 0 before the first) and returns
// the trace's end time. With loop, the trace repeats.
func TraceHarvest(r traces.Reader, loop bool) (func(t float64) float64, float64, error) {
	var ts, ps []float64
	for {
		s, err := r.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, 0, err
		}
		ts, ps = append(ts, s.T), append(ps, s.P)
	}
	if len(ts) == 0 {
		return nil, 0, errors.New("emulated: empty trace")
	}
	end := ts[len(ts)-1]
	if len(ts) > 1 {
		end += ts[len(ts)-1] - ts[len(ts)-2] // the last sample holds one period
	}
	t0 := ts[0]
	return func(t float64) float64 {
		if loop && end > t0 {
			span := end - t0
			for t >= end {
				t -= span
			}
		}
		if t >= end {
			return 0
		}
		i := sort.SearchFloat64s(ts, t)
		if i < len(ts) && ts[i] == t {
			return ps[i]
		}
		if i == 0 {
			return 0
		}
		return ps[i-1]
	}, end, nil
}
