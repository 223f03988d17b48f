package fixedpoint

import (
	"math"
	"math/bits"
)

// Q-format note: a "Qi" value has i integer bits and 31-i fractional bits in
// an int32. SRDHM of a Qi and a Qj value is their product as Q(i+j).

// expSmall returns exp(a) for a Q0 value a in [-1/4, 0), as Q0, by gemmlowp's
// Taylor polynomial around -1/8.
func expSmall(a int32) int32 {
	const constTerm = 1895147668 // exp(-1/8) in Q0
	const oneThird = 715827883   // 1/3 in Q0
	x := a + (1 << 28)           // a + 1/8
	x2 := SRDHM(x, x)
	x3 := SRDHM(x2, x)
	x4 := SRDHM(x2, x2)
	x4Over4 := RDBPOT(x4, 2)
	poly := RDBPOT(SRDHM(x4Over4+x3, oneThird)+x2, 1)
	return constTerm + SRDHM(constTerm, x+poly)
}

// expBarrel holds exp(-2^k) in Q0 for the bits of the remainder, k = -2..4.
var expBarrel = [...]struct {
	bit        uint
	multiplier int32
}{
	{24, 1672461947}, {25, 1302514674}, {26, 790015084}, {27, 290630308},
	{28, 39332535}, {29, 720401}, {30, 242},
}

// ExpOnNegativeValuesQ5 is gemmlowp's exp_on_negative_values for a Q5.26
// input a <= 0; the result is exp(a) as Q0.
func ExpOnNegativeValuesQ5(a int32) int32 {
	if a == 0 {
		return math.MaxInt32
	}
	const oneQuarter = int32(1) << 24
	modQuarterMinusQuarter := (a & (oneQuarter - 1)) - oneQuarter
	result := expSmall(SaturatingLeftShift(modQuarterMinusQuarter, 5))
	remainder := modQuarterMinusQuarter - a
	for _, b := range expBarrel {
		if remainder&(int32(1)<<b.bit) != 0 {
			result = SRDHM(result, b.multiplier)
		}
	}
	return result
}

// OneOverOnePlusX is gemmlowp's one_over_one_plus_x_for_x_in_0_1: for a Q0
// value y in [0, 1) it returns 1/(1+y) as Q0 by Newton-Raphson.
func OneOverOnePlusX(y int32) int32 {
	// RoundingHalfSum(y, One) with One = 2^31-1 in Q0.
	sum := int64(y) + math.MaxInt32
	if sum >= 0 {
		sum++
	} else {
		sum--
	}
	half := int32(sum / 2)
	const c48over17 = 1515870810     // 48/17 in Q2
	const cNeg32over17 = -1010580540 // -32/17 in Q2
	x := c48over17 + SRDHM(half, cNeg32over17)
	for i := 0; i < 3; i++ {
		halfTimesX := SRDHM(half, x)
		oneMinus := (int32(1) << 29) - halfTimesX
		x += SaturatingLeftShift(SRDHM(x, oneMinus), 2)
	}
	return SaturatingLeftShift(x, 1)
}

// Reciprocal is TFLite's GetReciprocal: for a positive fixed-point x with
// xIntegerBits integer bits it returns the Q0 scale of 1/x and the number of
// bits by which x exceeded one.
func Reciprocal(x int32, xIntegerBits int) (scale int32, bitsOverUnit int) {
	headroomPlusOne := bits.LeadingZeros32(uint32(x))
	bitsOverUnit = xIntegerBits - headroomPlusOne
	shiftedMinusOne := int32((uint32(x) << uint(headroomPlusOne)) - (uint32(1) << 31))
	return OneOverOnePlusX(shiftedMinusOne), bitsOverUnit
}

// SoftmaxInputRadius is TFLite's CalculateInputRadius for softmax: the largest
// input difference (in raw int8 steps) that still contributes.
func SoftmaxInputRadius(inputIntegerBits, inputLeftShift int) int32 {
	maxRescaled := 1.0 * float64((int64(1)<<uint(inputIntegerBits))-1) *
		float64(int64(1)<<uint(31-inputIntegerBits)) / float64(int64(1)<<uint(inputLeftShift))
	return int32(math.Floor(maxRescaled))
}

// PreprocessSoftmaxScaling is TFLite's PreprocessSoftmaxScaling: it turns
// beta*inputScale into a multiplier and left shift for a Q(inputIntegerBits)
// input difference.
func PreprocessSoftmaxScaling(beta, inputScale float64, inputIntegerBits int) (multiplier int32, leftShift int) {
	real := math.Min(beta*inputScale*float64(int64(1)<<uint(31-inputIntegerBits)), float64(int64(1)<<31)-1.0)
	return QuantizeMultiplier(real)
}
