// Package fixedpoint holds TFLite's integer requantization arithmetic, bit for
// bit: the saturating rounding doubling high multiply, the rounding divide by a
// power of two, MultiplyByQuantizedMultiplier, the conversion of a real scale
// into a multiplier and shift, and gemmlowp's fixed-point exp and reciprocal
// used by int8 softmax.
//
// Every function here is the ground truth of the harness: the reference
// executor, the simulated board and (in C) the firmware all round the same way.
// Single-rounding shortcuts or floating point are not equivalent; Single
// exists only to compare with engines that round once.
package fixedpoint

import (
	"fmt"
	"math"
)

// Rounding selects how MultiplyByQuantizedMultiplier rounds.
type Rounding uint8

const (
	// Double is TFLite's reference (and TFLite Micro's) arithmetic: a
	// rounding doubling high multiply, then a rounding shift. The default
	// everywhere, and the only one the boards and the firmware use.
	Double Rounding = iota
	// Single scales once in floating point and rounds once, half away from
	// zero: round(x * multiplier/2^31 * 2^shift). That is how TFLite's
	// desktop kernels on XNNPACK and Arm NN's CpuRef requantize; it exists
	// to compare the harness with those engines layer by layer.
	Single
)

func (r Rounding) String() string {
	switch r {
	case Double:
		return "double"
	case Single:
		return "single"
	}
	return fmt.Sprintf("Rounding(%d)", uint8(r))
}

// ParseRounding reads "double" or "single".
func ParseRounding(s string) (Rounding, error) {
	switch s {
	case "double", "":
		return Double, nil
	case "single":
		return Single, nil
	}
	return Double, fmt.Errorf("rounding %q: want double (TFLite Micro, the default) or single (TFLite desktop, XNNPACK)", s)
}

// MBQM is MultiplyByQuantizedMultiplier with rounding r.
func (r Rounding) MBQM(x, multiplier int32, shift int) int32 {
	if r == Single {
		return MBQMSingle(x, multiplier, shift)
	}
	return MBQM(x, multiplier, shift)
}

// MBQMSingle scales x by multiplier/2^31 * 2^shift in float64 and rounds
// once, half away from zero, saturating to int32.
func MBQMSingle(x, multiplier int32, shift int) int32 {
	v := math.Round(float64(x) * float64(multiplier) * math.Ldexp(1, shift-31))
	return int32(max(min(v, math.MaxInt32), math.MinInt32))
}

// SRDHM is gemmlowp's SaturatingRoundingDoublingHighMul: (a*b*2) >> 32,
// rounded to nearest with ties away from zero, saturating the one overflow case.
func SRDHM(a, b int32) int32 {
	if a == math.MinInt32 && b == math.MinInt32 {
		return math.MaxInt32
	}
	ab := int64(a) * int64(b)
	nudge := int64(1 << 30)
	if ab < 0 {
		nudge = 1 - (1 << 30)
	}
	// Go's division truncates toward zero, as C++'s does.
	return int32((ab + nudge) / (1 << 31))
}

// RDBPOT is gemmlowp's RoundingDivideByPOT: x / 2^exponent rounded to nearest,
// ties away from zero. exponent must be in [0, 31].
func RDBPOT(x int32, exponent int) int32 {
	mask := int32((int64(1) << uint(exponent)) - 1)
	remainder := x & mask
	threshold := mask >> 1
	if x < 0 {
		threshold++
	}
	q := x >> uint(exponent)
	if remainder > threshold {
		q++
	}
	return q
}

// MBQM is TFLite's MultiplyByQuantizedMultiplier (double-rounding form): it
// scales x by multiplier/2^31 * 2^shift. A positive shift is a left shift
// applied before the multiply; a negative one a rounding right shift after it.
func MBQM(x, multiplier int32, shift int) int32 {
	if shift > 0 {
		// C++ computes x * (1 << left_shift) in int32; overflow there is
		// undefined behaviour that valid models never reach. Wrap like the
		// hardware would rather than panic.
		return SRDHM(int32(uint32(x)<<uint(shift)), multiplier)
	}
	return RDBPOT(SRDHM(x, multiplier), -shift)
}

// MBQMSmallerThanOne is TFLite's MultiplyByQuantizedMultiplierSmallerThanOneExp:
// shift must be <= 0.
func MBQMSmallerThanOne(x, multiplier int32, shift int) int32 {
	return RDBPOT(SRDHM(x, multiplier), -shift)
}

// MBQMGreaterThanOne is TFLite's MultiplyByQuantizedMultiplierGreaterThanOne:
// leftShift must be >= 0.
func MBQMGreaterThanOne(x, multiplier int32, leftShift int) int32 {
	return SRDHM(int32(uint32(x)<<uint(leftShift)), multiplier)
}

// QuantizeMultiplier turns a real, non-negative scale into TFLite's
// (multiplier, shift) pair with scale ~= multiplier/2^31 * 2^shift and the
// multiplier in [2^30, 2^31). It follows tflite::QuantizeMultiplier exactly,
// including the flush of tiny scales to zero.
func QuantizeMultiplier(realMultiplier float64) (multiplier int32, shift int) {
	if realMultiplier == 0 || math.IsNaN(realMultiplier) || math.IsInf(realMultiplier, 0) {
		return 0, 0
	}
	frac, exp := math.Frexp(realMultiplier)
	q := int64(math.Round(frac * (1 << 31)))
	if q == 1<<31 {
		q /= 2
		exp++
	}
	if exp < -31 {
		return 0, 0
	}
	// TFLite clamps shifts above 30 (a scale of 2^30 or more is meaningless
	// for 8-bit data) so that the left shift cannot overflow int32 math.
	if exp > 30 {
		exp = 30
		q = (1 << 31) - 1
	}
	return int32(q), exp
}

// QuantizeMultiplierSmallerThanOne is tflite::QuantizeMultiplierSmallerThanOneExp:
// for 0 < realMultiplier < 1 it gives a shift <= 0.
func QuantizeMultiplierSmallerThanOne(realMultiplier float64) (int32, int) {
	return QuantizeMultiplier(realMultiplier)
}

// SaturatingLeftShift multiplies x by 2^exponent, clamped to the int32 range
// (gemmlowp's SaturatingRoundingMultiplyByPOT for a positive exponent).
func SaturatingLeftShift(x int32, exponent int) int32 {
	if exponent <= 0 {
		return x
	}
	if exponent >= 31 {
		switch {
		case x > 0:
			return math.MaxInt32
		case x < 0:
			return math.MinInt32
		}
		return 0
	}
	limit := int32(1) << uint(31-exponent)
	if x >= limit {
		return math.MaxInt32
	}
	if x < -limit {
		return math.MinInt32
	}
	return x << uint(exponent)
}
