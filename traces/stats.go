package traces

import (
	"fmt"
	"io"
	"math"
)

// Stats summarizes a trace. Averages are weighted by time (zero-order hold),
// and the last sample counts for its hold (Meta.LastHold).
type Stats struct {
	Name       string  // Meta.Name of the trace
	Samples    int64   // number of samples
	Start      float64 // time of the first sample, s
	Duration   float64 // from the first sample to the end of the last one's hold, s
	MinW       float64 // lowest power
	MeanW      float64 // time-weighted mean power
	MaxW       float64 // highest power
	StdW       float64 // time-weighted standard deviation of power
	EnergyJ    float64 // integral of P dt
	ThresholdW float64 // the threshold FractionAbove and the stretches refer to

	FractionAbove float64 // fraction of the time with P >= ThresholdW
	OnStretches   int64   // maximal stretches of time with P >= ThresholdW
	MeanOnS       float64 // mean length of those stretches, s (0 if none)
	LongestOnS    float64 // longest of them, s
	MeanOffS      float64 // mean length of the stretches below the threshold, s (0 if none)
	LongestOffS   float64 // longest of them, s
}

// String formats the summary on one line.
func (s Stats) String() string {
	return fmt.Sprintf("%s: %d samples, %.6g s, min/mean/max %.6g/%.6g/%.6g mW (std %.6g), energy %.6g mJ, %.4g %% of the time >= %.6g mW (%d stretches, mean %.4g s, longest %.4g s; off: mean %.4g s, longest %.4g s)",
		s.Name, s.Samples, s.Duration, s.MinW*1e3, s.MeanW*1e3, s.MaxW*1e3, s.StdW*1e3, s.EnergyJ*1e3,
		s.FractionAbove*100, s.ThresholdW*1e3, s.OnStretches, s.MeanOnS, s.LongestOnS, s.MeanOffS, s.LongestOffS)
}

// kahan is a compensated (Neumaier) sum, so that 86 million small terms add up
// without drift.
type kahan struct{ sum, c float64 }

func (k *kahan) add(x float64) {
	t := k.sum + x
	if math.Abs(k.sum) >= math.Abs(x) {
		k.c += (k.sum - t) + x
	} else {
		k.c += (x - t) + k.sum
	}
	k.sum = t
}

func (k *kahan) value() float64 { return k.sum + k.c }

// summarizer accumulates statistics over held samples (power p for dt s).
type summarizer struct {
	s       Stats
	energy  kahan
	onTime  kahan
	offTime kahan
	offRuns int64
	w, mean float64 // West's weighted running mean and sum of squares
	m2      float64
	run     float64 // length of the current stretch
	runOn   bool
	haveRun bool
	thr     float64
	firstP  float64
}

func (z *summarizer) add(p, dt float64) {
	s := &z.s
	if s.Samples == 0 {
		s.MinW, s.MaxW, z.firstP = p, p, p
	}
	s.Samples++
	s.MinW = min(s.MinW, p)
	s.MaxW = max(s.MaxW, p)
	if dt <= 0 {
		return
	}
	z.energy.add(p * dt)
	z.w += dt
	delta := p - z.mean
	z.mean += dt / z.w * delta
	z.m2 += dt * delta * (p - z.mean)
	on := p >= z.thr
	if z.haveRun && on == z.runOn {
		z.run += dt
	} else {
		z.closeRun()
		z.haveRun, z.runOn, z.run = true, on, dt
	}
	if on {
		z.onTime.add(dt)
	} else {
		z.offTime.add(dt)
	}
}

func (z *summarizer) closeRun() {
	if !z.haveRun {
		return
	}
	if z.runOn {
		z.s.OnStretches++
		z.s.LongestOnS = max(z.s.LongestOnS, z.run)
	} else {
		z.offRuns++
		z.s.LongestOffS = max(z.s.LongestOffS, z.run)
	}
}

func (z *summarizer) finish() Stats {
	z.closeRun()
	s := z.s
	s.EnergyJ = z.energy.value()
	on, off := z.onTime.value(), z.offTime.value()
	if s.Duration > 0 {
		s.MeanW = s.EnergyJ / s.Duration
		s.StdW = math.Sqrt(max(z.m2/z.w, 0))
		s.FractionAbove = on / (on + off)
	} else {
		s.MeanW = z.firstP
		if z.firstP >= z.thr {
			s.FractionAbove = 1
		}
	}
	if s.OnStretches > 0 {
		s.MeanOnS = on / float64(s.OnStretches)
	}
	if z.offRuns > 0 {
		s.MeanOffS = off / float64(z.offRuns)
	}
	return s
}

// Summarize reads a trace to its end and returns its statistics, in constant
// memory. thresholdW sets the power that counts as "on" for FractionAbove and
// the stretch lengths (e.g. the power a device needs to run continuously).
func Summarize(r Reader, thresholdW float64) (Stats, error) {
	if !finite(thresholdW) || thresholdW < 0 {
		return Stats{}, fmt.Errorf("%s: threshold %s W is not a non-negative power", nameOf(r), fmtNum(thresholdW))
	}
	z := summarizer{thr: thresholdW}
	z.s.ThresholdW = thresholdW
	prev, err := r.Next()
	if err == io.EOF {
		return Stats{}, fmt.Errorf("%s: empty trace (no samples)", nameOf(r))
	}
	if err != nil {
		return Stats{}, err
	}
	first := prev
	lastDT := 0.0
	for {
		s, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return Stats{}, err
		}
		lastDT = s.T - prev.T
		z.add(prev.P, lastDT)
		prev = s
	}
	m := r.Meta()
	hold := m.LastHold(lastDT)
	z.add(prev.P, hold)
	z.s.Name = m.Name
	z.s.Start = first.T
	z.s.Duration = prev.T - first.T + hold
	return z.finish(), nil
}
