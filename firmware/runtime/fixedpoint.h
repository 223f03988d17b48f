/*
 * fixedpoint.h - TFLite's integer requantization arithmetic, bit for bit with
 * harness/fixedpoint (Go): SRDHM, RDBPOT, MultiplyByQuantizedMultiplier in
 * its double-rounding form, and gemmlowp's fixed-point exp and reciprocal
 * used by int8 softmax. No floating point.
 *
 * Every function is total: for arguments that valid models never produce
 * (shifts of 32 or more, negative exponents) it returns what the Go code
 * returns, without undefined behaviour.
 */
#ifndef IH_FIXEDPOINT_H
#define IH_FIXEDPOINT_H

#include <stdint.h>

/* gemmlowp's SaturatingRoundingDoublingHighMul: (a*b*2) >> 32 rounded to
 * nearest, ties away from zero; saturates the single overflow case. */
int32_t ih_srdhm(int32_t a, int32_t b);

/* gemmlowp's RoundingDivideByPOT: x / 2^exponent, rounded to nearest, ties
 * away from zero. exponent is taken as Go's uint(exponent): a negative one
 * is a huge shift. */
int32_t ih_rdbpot(int32_t x, int32_t exponent);

/* TFLite's MultiplyByQuantizedMultiplier: x * multiplier/2^31 * 2^shift; a
 * positive shift is a left shift before the multiply, a negative one a
 * rounding right shift after it. */
int32_t ih_mbqm(int32_t x, int32_t multiplier, int32_t shift);

/* MultiplyByQuantizedMultiplierSmallerThanOneExp (shift <= 0). */
int32_t ih_mbqm_smaller_than_one(int32_t x, int32_t multiplier, int32_t shift);

/* MultiplyByQuantizedMultiplierGreaterThanOne (left_shift >= 0). */
int32_t ih_mbqm_greater_than_one(int32_t x, int32_t multiplier, int32_t left_shift);

/* x * 2^exponent clamped to the int32 range (exponent <= 0: x). */
int32_t ih_saturating_left_shift(int32_t x, int32_t exponent);

/* gemmlowp's exp_on_negative_values for a Q5.26 input a <= 0, as Q0. */
int32_t ih_exp_on_negative_values_q5(int32_t a);

/* gemmlowp's one_over_one_plus_x_for_x_in_0_1 (Q0 in, Q0 out). */
int32_t ih_one_over_one_plus_x(int32_t y);

/* TFLite's GetReciprocal: the Q0 scale of 1/x for a positive fixed-point x
 * with x_integer_bits integer bits, and the bits by which x exceeds one. */
int32_t ih_reciprocal(int32_t x, int32_t x_integer_bits, int32_t *bits_over_unit);

/* The number of leading zero bits of x (32 for 0). */
int32_t ih_clz32(uint32_t x);

#endif
