package traces

import (
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"
	"unicode"
)

// Synth returns a synthetic trace described by a spec "generator:key=value,...".
// The same spec gives the same samples on every run and machine: randomness
// comes from math/rand/v2's PCG seeded from the spec, and random powers are
// rounded to a resolution so that last-bit differences of math functions
// between CPUs cannot show. Generators and keys (defaults in brackets):
//
//	constant: power (required), duration [60s], rate [100Hz] or period
//	square:   high (required), low [0], period_on, period_off (required),
//	          duration [60s], rate [100Hz] or period
//	rf:       mean [1mW], peak [10mW], floor [30uW], dropout [0.05],
//	          sigma [1], coherence [0.5s], resolution [10uW],
//	          duration [300s], rate [50Hz] or period, seed [1]
//	solar:    peak [5mW], day [24h], sunrise [day/4], sunset [3*day/4],
//	          start [0s], duration [day], clouds [0.3], cloud_len [day/96],
//	          depth [0.8], resolution [1nW], rate [1Hz] or period, seed [1]
//
// Powers take W, mW, uW (or µW), nW; times s, ms, us, min, h; rates Hz, kHz.
// A bare 0 needs no unit.
//
// rf models a Powercast P2110B-like RF harvester: log-normal fading (a
// Gauss-Markov process of log power with the given coherence time and sigma),
// clipped at peak and at floor, and single-sample drops to the floor with
// probability dropout. Its scale is solved so that the expected mean power is
// mean. solar is a day curve: zero at night, a sine bell between sunrise and
// sunset, and clouds covering a fraction clouds of the time (mean length
// cloud_len), each attenuating by a random depth between depth/2 and depth.
func Synth(spec string) (Reader, error) {
	sp, err := parseSpec(spec)
	if err != nil {
		return nil, err
	}
	var r *synthReader
	switch sp.gen {
	case "constant":
		r, err = synthConstant(sp)
	case "square":
		r, err = synthSquare(sp)
	case "rf":
		r, err = synthRF(sp)
	case "solar":
		r, err = synthSolar(sp)
	default:
		return nil, fmt.Errorf("synth: unknown generator %s (known: constant, square, rf, solar)", quote(sp.gen))
	}
	// A misspelt key explains more than the default that replaced it.
	if uerr := sp.unused(); uerr != nil {
		return nil, uerr
	}
	if err != nil {
		return nil, err
	}
	return r, nil
}

// synthReader produces n samples on a regular grid from a generator function,
// called once per sample in order.
type synthReader struct {
	meta   Meta
	n, i   int64
	period float64
	grid   grid
	gen    func(i int64, t float64) float64
}

func (s *synthReader) Meta() Meta { return s.meta.clone() }

func (s *synthReader) Next() (Sample, error) {
	if s.i >= s.n {
		return Sample{}, io.EOF
	}
	t := s.grid.at(s.i)
	p := s.gen(s.i, t)
	s.i++
	return Sample{T: t, P: p}, nil
}

// spec is a parsed generator spec: its key=value pairs in the order given.
type spec struct {
	text string
	gen  string
	keys []string
	vals []string
	used []bool
	err  error // first error met while reading values
}

func parseSpec(text string) (*spec, error) {
	text = strings.TrimSpace(text)
	if i := strings.IndexFunc(text, unicode.IsControl); i >= 0 {
		return nil, fmt.Errorf("synth: spec %s holds a control character", quote(text))
	}
	gen, rest, _ := strings.Cut(text, ":")
	sp := &spec{text: text, gen: strings.ToLower(strings.TrimSpace(gen))}
	if sp.gen == "" {
		return nil, fmt.Errorf("synth: empty generator in %s (expected e.g. \"rf:mean=1mW,duration=60s\")", quote(text))
	}
	if strings.ContainsFunc(sp.gen, func(r rune) bool { return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '_' || r == '-') }) {
		return nil, fmt.Errorf("synth: unknown generator %s (known: constant, square, rf, solar)", quote(sp.gen))
	}
	if strings.TrimSpace(rest) == "" {
		return sp, nil
	}
	for item := range strings.SplitSeq(rest, ",") {
		k, v, ok := strings.Cut(item, "=")
		k = strings.ToLower(strings.TrimSpace(k))
		v = strings.TrimSpace(v)
		if !ok || k == "" {
			return nil, fmt.Errorf("synth: %s: %s is not key=value", sp.gen, quote(strings.TrimSpace(item)))
		}
		for _, have := range sp.keys {
			if have == k {
				return nil, fmt.Errorf("synth: %s: key %s given twice", sp.gen, quote(k))
			}
		}
		sp.keys = append(sp.keys, k)
		sp.vals = append(sp.vals, v)
		sp.used = append(sp.used, false)
	}
	return sp, nil
}

// lookup returns the value of a key and marks it used.
func (sp *spec) lookup(key string) (string, bool) {
	for i, k := range sp.keys {
		if k == key {
			sp.used[i] = true
			return sp.vals[i], true
		}
	}
	return "", false
}

func (sp *spec) fail(key, format string, args ...any) {
	if sp.err == nil {
		sp.err = fmt.Errorf("synth: %s: key %s: %s", sp.gen, quote(key), fmt.Sprintf(format, args...))
	}
}

// unused reports keys the generator does not know.
func (sp *spec) unused() error {
	for i, u := range sp.used {
		if !u {
			return fmt.Errorf("synth: %s: unknown key %s", sp.gen, quote(sp.keys[i]))
		}
	}
	return nil
}

type unit struct {
	suffix   string
	mul, div float64
}

var (
	powerUnits = []unit{{"kW", 1e3, 1}, {"mW", 1, 1e3}, {"uW", 1, 1e6}, {"µW", 1, 1e6}, {"nW", 1, 1e9}, {"W", 1, 1}}
	timeUnits  = []unit{{"min", 60, 1}, {"ms", 1, 1e3}, {"us", 1, 1e6}, {"µs", 1, 1e6}, {"h", 3600, 1}, {"s", 1, 1}}
	freqUnits  = []unit{{"kHz", 1e3, 1}, {"MHz", 1e6, 1}, {"Hz", 1, 1}}
)

func unitNames(us []unit) string {
	var names []string
	for _, u := range us {
		names = append(names, u.suffix)
	}
	return strings.Join(names, ", ")
}

// quantity reads a key with a unit; def is used when the key is absent. The
// value must be >= lo (and > lo when strict).
func (sp *spec) quantity(key string, units []unit, def, lo float64, strict bool) float64 {
	v, ok := sp.lookup(key)
	if !ok {
		return def
	}
	for _, u := range units {
		num, found := strings.CutSuffix(v, u.suffix)
		if !found {
			continue
		}
		x, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
		if err != nil || !finite(x) {
			sp.fail(key, "cannot parse %s as a number of %s", quote(v), u.suffix)
			return def
		}
		x = x * u.mul / u.div
		return sp.check(key, v, x, lo, strict, def)
	}
	if x, err := strconv.ParseFloat(v, 64); err == nil && x == 0 {
		return sp.check(key, v, 0, lo, strict, def)
	}
	sp.fail(key, "%s needs a unit (%s)", quote(v), unitNames(units))
	return def
}

func (sp *spec) check(key, v string, x, lo float64, strict bool, def float64) float64 {
	if !finite(x) || x < lo || (strict && x == lo) {
		rel := ">="
		if strict {
			rel = ">"
		}
		sp.fail(key, "%s is out of range (must be %s %s)", quote(v), rel, fmtNum(lo))
		return def
	}
	return x
}

// number reads a plain number in [lo, hi].
func (sp *spec) number(key string, def, lo, hi float64) float64 {
	v, ok := sp.lookup(key)
	if !ok {
		return def
	}
	x, err := strconv.ParseFloat(v, 64)
	if err != nil || !finite(x) {
		sp.fail(key, "cannot parse %s as a number", quote(v))
		return def
	}
	if x < lo || x > hi {
		sp.fail(key, "%s is out of range [%s, %s]", quote(v), fmtNum(lo), fmtNum(hi))
		return def
	}
	return x
}

func (sp *spec) seed(def uint64) uint64 {
	v, ok := sp.lookup("seed")
	if !ok {
		return def
	}
	x, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		sp.fail("seed", "%s is not a non-negative integer", quote(v))
		return def
	}
	return x
}

func (sp *spec) required(key string) {
	if _, ok := sp.lookup(key); !ok {
		sp.fail(key, "missing (required by %s)", sp.gen)
	}
}

// maxSynthSamples bounds a synthetic trace so that sample indices stay exact.
const maxSynthSamples = 1 << 50

// grid reads the sampling (rate or period) and the duration, and builds the
// reader around a generator.
func (sp *spec) grid(defRate, defDuration float64) (*synthReader, float64) {
	_, hasRate := sp.lookup("rate")
	_, hasPeriod := sp.lookup("period")
	period := 1 / defRate
	switch {
	case hasRate && hasPeriod:
		sp.fail("period", "give rate or period, not both")
	case hasRate:
		if r := sp.quantity("rate", freqUnits, defRate, 0, true); r > 0 {
			period = 1 / r
		}
	case hasPeriod:
		period = sp.quantity("period", timeUnits, period, 0, true)
	}
	duration := sp.quantity("duration", timeUnits, defDuration, 0, true)
	n := math.Ceil(duration/period - 1e-9)
	switch {
	case sp.err != nil:
	case !(n <= maxSynthSamples):
		sp.fail("duration", "%s s at %s Hz is more than 2^50 samples", fmtNum(duration), fmtNum(1/period))
	case period == 0 || math.IsInf(1/period, 0):
		sp.fail("period", "sample period %s s is too small", fmtNum(period))
	}
	if n < 1 {
		n = 1
	}
	r := &synthReader{
		meta:   Meta{Name: sp.text, Format: "synth", Kind: KindPower, Period: period},
		n:      int64(n),
		period: period,
		grid:   newGrid(period),
	}
	return r, duration
}

func synthConstant(sp *spec) (*synthReader, error) {
	sp.required("power")
	p := sp.quantity("power", powerUnits, 0, 0, false)
	r, _ := sp.grid(100, 60)
	r.gen = func(int64, float64) float64 { return p }
	return r, sp.err
}

func synthSquare(sp *spec) (*synthReader, error) {
	sp.required("high")
	sp.required("period_on")
	sp.required("period_off")
	high := sp.quantity("high", powerUnits, 0, 0, false)
	low := sp.quantity("low", powerUnits, 0, 0, false)
	on := sp.quantity("period_on", timeUnits, 1, 0, true)
	off := sp.quantity("period_off", timeUnits, 1, 0, false)
	r, _ := sp.grid(100, 60)
	// In whole samples when the phases fall on the grid, so no float rounding
	// decides which phase a sample belongs to.
	onN, offN := on/r.period, off/r.period
	if math.Abs(onN-math.Round(onN)) < 1e-6 && math.Abs(offN-math.Round(offN)) < 1e-6 && math.Round(onN) >= 1 {
		on, cycle := int64(math.Round(onN)), int64(math.Round(onN)+math.Round(offN))
		r.gen = func(i int64, _ float64) float64 {
			if i%cycle < on {
				return high
			}
			return low
		}
	} else {
		cycle := on + off
		r.gen = func(_ int64, t float64) float64 {
			if math.Mod(t, cycle) < on {
				return high
			}
			return low
		}
	}
	return r, sp.err
}

// fmtPower formats a power for people: "8.006 mW".
func fmtPower(w float64) string {
	switch a := math.Abs(w); {
	case a == 0:
		return "0 W"
	case a >= 1:
		return strconv.FormatFloat(w, 'g', 4, 64) + " W"
	case a >= 1e-3:
		return strconv.FormatFloat(w*1e3, 'g', 4, 64) + " mW"
	case a >= 1e-6:
		return strconv.FormatFloat(w*1e6, 'g', 4, 64) + " uW"
	}
	return strconv.FormatFloat(w*1e9, 'g', 4, 64) + " nW"
}

// quantize rounds p to a multiple of res (no rounding when res is 0), as the
// nearest float64 to the decimal multiple when 1/res is a whole number.
func quantize(p, res float64) float64 {
	if res <= 0 {
		return p
	}
	m := math.Round(p / res)
	if inv := 1 / res; inv >= 1 && math.Abs(inv-math.Round(inv)) <= 1e-9*inv {
		return m / math.Round(inv)
	}
	return m * res
}

// normCDF is the standard normal distribution function.
func normCDF(x float64) float64 { return 0.5 * math.Erfc(-x/math.Sqrt2) }

// rfMean returns the mean of min(max(S*exp(sigma*Z - sigma^2/2), floor), peak)
// for a standard normal Z.
func rfMean(s, sigma, floor, peak float64) float64 {
	mu := math.Log(s) - sigma*sigma/2
	bK := (math.Log(peak) - mu) / sigma
	bF := math.Inf(-1)
	if floor > 0 {
		bF = (math.Log(floor) - mu) / sigma
	}
	return floor*normCDF(bF) + s*(normCDF(bK-sigma)-normCDF(bF-sigma)) + peak*(1-normCDF(bK))
}

func synthRF(sp *spec) (*synthReader, error) {
	mean := sp.quantity("mean", powerUnits, 1e-3, 0, true)
	peak := sp.quantity("peak", powerUnits, 10e-3, 0, true)
	floor := sp.quantity("floor", powerUnits, 30e-6, 0, false)
	drop := sp.number("dropout", 0.05, 0, 0.99)
	sigma := sp.number("sigma", 1, 0.01, 4)
	coh := sp.quantity("coherence", timeUnits, 0.5, 0, true)
	res := sp.quantity("resolution", powerUnits, 10e-6, 0, false)
	seed := sp.seed(1)
	r, _ := sp.grid(50, 300)
	if sp.err != nil {
		return nil, sp.err
	}
	if !(floor < peak) {
		sp.fail("floor", "%s is not below the peak %s", fmtPower(floor), fmtPower(peak))
		return nil, sp.err
	}
	// The expected mean runs from floor to lo+(1-drop)*(peak-floor) as the
	// scale grows: solve for the scale by bisection on its logarithm.
	hi := floor + (1-drop)*(peak-floor)
	if !(mean > floor && mean < hi) {
		sp.fail("mean", "%s is not reachable: with floor %s, peak %s and dropout %s the mean lies strictly between %s and %s",
			fmtPower(mean), fmtPower(floor), fmtPower(peak), fmtNum(drop), fmtPower(floor), fmtPower(hi))
		return nil, sp.err
	}
	target := (mean - drop*floor) / (1 - drop)
	lo, up := math.Log(target)-60, math.Log(peak)+60
	for range 200 {
		mid := (lo + up) / 2
		if rfMean(math.Exp(mid), sigma, floor, peak) < target {
			lo = mid
		} else {
			up = mid
		}
	}
	scale := math.Exp((lo + up) / 2)
	rho := math.Exp(-r.period / coh)
	innov := math.Sqrt(1 - rho*rho)
	bias := sigma * sigma / 2
	rng := rand.New(rand.NewPCG(seed, 0x5246)) // "RF"
	x := 0.0
	r.gen = func(i int64, _ float64) float64 {
		z := rng.NormFloat64()
		if i == 0 {
			x = z
		} else {
			// Explicit conversions keep the compiler from fusing multiply-adds
			// differently on different CPUs.
			x = float64(rho*x) + float64(innov*z)
		}
		u := rng.Float64()
		p := scale * math.Exp(float64(sigma*x)-bias)
		p = min(max(p, floor), peak)
		if u < drop {
			p = floor
		}
		return quantize(p, res)
	}
	return r, nil
}

func synthSolar(sp *spec) (*synthReader, error) {
	peak := sp.quantity("peak", powerUnits, 5e-3, 0, false)
	day := sp.quantity("day", timeUnits, 86400, 0, true)
	sunrise := sp.quantity("sunrise", timeUnits, day/4, 0, false)
	sunset := sp.quantity("sunset", timeUnits, 3*day/4, 0, true)
	start := sp.quantity("start", timeUnits, 0, 0, false)
	clouds := sp.number("clouds", 0.3, 0, 1)
	cloudLen := sp.quantity("cloud_len", timeUnits, day/96, 0, true)
	depth := sp.number("depth", 0.8, 0, 1)
	res := sp.quantity("resolution", powerUnits, 1e-9, 0, false)
	seed := sp.seed(1)
	r, _ := sp.grid(1, day)
	if sp.err != nil {
		return nil, sp.err
	}
	if !(sunrise < sunset && sunset <= day) {
		sp.fail("sunset", "daylight from %s s to %s s does not fit a day of %s s", fmtNum(sunrise), fmtNum(sunset), fmtNum(day))
		return nil, sp.err
	}
	// A two-state (clear, cloudy) Markov chain with mean cloud length
	// cloudLen and a stationary cloudy fraction clouds.
	pEnd := -math.Expm1(-r.period / cloudLen)
	pStart := 1.0
	switch {
	case clouds == 0:
		pStart = 0
	case clouds == 1:
		pEnd = 0
	default:
		pStart = -math.Expm1(-r.period / (cloudLen * (1 - clouds) / clouds))
	}
	rng := rand.New(rand.NewPCG(seed, 0x534f4c)) // "SOL"
	cloudy := false
	att := 1.0
	newCloud := func() {
		cloudy = true
		att = 1 - depth*(0.5+0.5*rng.Float64())
	}
	span := sunset - sunrise
	r.gen = func(i int64, t float64) float64 {
		u := rng.Float64()
		switch {
		case i == 0:
			if u < clouds {
				newCloud()
			}
		case cloudy:
			if u < pEnd {
				cloudy, att = false, 1
			}
		default:
			if u < pStart {
				newCloud()
			}
		}
		tod := math.Mod(start+t, day)
		if tod < sunrise || tod >= sunset {
			return 0
		}
		p := peak * math.Sin(math.Pi*float64((tod-sunrise)/span)) * att
		return quantize(max(p, 0), res)
	}
	return r, nil
}
