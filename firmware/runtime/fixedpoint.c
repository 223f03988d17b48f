/*
 * fixedpoint.c - see fixedpoint.h. Mirrors harness/fixedpoint/fixedpoint.go
 * and exp.go line by line; int32 additions that Go lets wrap go through the
 * wrapping helpers of le.h.
 */
#include "fixedpoint.h"
#include "le.h"

int32_t ih_srdhm(int32_t a, int32_t b)
{
    int64_t ab, nudge;
    if (a == INT32_MIN && b == INT32_MIN) {
        return INT32_MAX;
    }
    ab = (int64_t)a * (int64_t)b;
    nudge = ab < 0 ? (int64_t)1 - ((int64_t)1 << 30) : ((int64_t)1 << 30);
    /* C99 division truncates toward zero, as Go's does. */
    return (int32_t)((ab + nudge) / ((int64_t)1 << 31));
}

int32_t ih_rdbpot(int32_t x, int32_t exponent)
{
    uint32_t e = (uint32_t)exponent; /* Go: uint(exponent) */
    int32_t mask, remainder, threshold, q;
    if (e >= 32u) {
        /* Go: int32((int64(1) << e) - 1) is -1, x >> e is 0 or -1. */
        mask = -1;
    } else {
        mask = (int32_t)(((int64_t)1 << e) - 1);
    }
    remainder = x & mask;
    threshold = ih_asr32(mask, 1);
    if (x < 0) {
        threshold++;
    }
    q = ih_asr32(x, e);
    if (remainder > threshold) {
        q++;
    }
    return q;
}

int32_t ih_mbqm(int32_t x, int32_t multiplier, int32_t shift)
{
    if (shift > 0) {
        return ih_srdhm(ih_shl32(x, (uint32_t)shift), multiplier);
    }
    return ih_rdbpot(ih_srdhm(x, multiplier), ih_i32(0u - (uint32_t)shift));
}

int32_t ih_mbqm_smaller_than_one(int32_t x, int32_t multiplier, int32_t shift)
{
    return ih_rdbpot(ih_srdhm(x, multiplier), ih_i32(0u - (uint32_t)shift));
}

int32_t ih_mbqm_greater_than_one(int32_t x, int32_t multiplier, int32_t left_shift)
{
    return ih_srdhm(ih_shl32(x, (uint32_t)left_shift), multiplier);
}

int32_t ih_saturating_left_shift(int32_t x, int32_t exponent)
{
    int32_t limit;
    if (exponent <= 0) {
        return x;
    }
    if (exponent >= 31) {
        if (x > 0) {
            return INT32_MAX;
        }
        if (x < 0) {
            return INT32_MIN;
        }
        return 0;
    }
    limit = (int32_t)((uint32_t)1 << (31 - exponent));
    if (x >= limit) {
        return INT32_MAX;
    }
    if (x < -limit) {
        return INT32_MIN;
    }
    return ih_shl32(x, (uint32_t)exponent);
}

/* exp(a) for a Q0 value a in [-1/4, 0), by gemmlowp's Taylor polynomial
 * around -1/8. */
static int32_t exp_small(int32_t a)
{
    const int32_t const_term = 1895147668; /* exp(-1/8) in Q0 */
    const int32_t one_third = 715827883;   /* 1/3 in Q0 */
    int32_t x = ih_add32(a, (int32_t)1 << 28);
    int32_t x2 = ih_srdhm(x, x);
    int32_t x3 = ih_srdhm(x2, x);
    int32_t x4 = ih_srdhm(x2, x2);
    int32_t x4_over_4 = ih_rdbpot(x4, 2);
    int32_t poly = ih_rdbpot(ih_add32(ih_srdhm(ih_add32(x4_over_4, x3), one_third), x2), 1);
    return ih_add32(const_term, ih_srdhm(const_term, ih_add32(x, poly)));
}

/* exp(-2^k) in Q0 for the bits 24..30 of the remainder, k = -2..4. */
static const int32_t exp_barrel[7] = {
    1672461947, 1302514674, 790015084, 290630308, 39332535, 720401, 242,
};

/* mask ? a : b, for a mask of all ones or all zeros. */
static int32_t select32(int32_t mask, int32_t a, int32_t b) { return (int32_t)(((uint32_t)a & (uint32_t)mask) | ((uint32_t)b & ~(uint32_t)mask)); }

/* Branch-free, as gemmlowp's SelectUsingMask: every barrel step is computed
 * and then kept or not, and a = 0 is selected at the end, so the cycles do
 * not depend on a. A task's cycles must not depend on its data: the plan
 * prices every task before any data exists (a softmax whose exps were
 * skipped by value ran up to 2x faster than its price). */
int32_t ih_exp_on_negative_values_q5(int32_t a)
{
    const int32_t one_quarter = (int32_t)1 << 24;
    int32_t mod_quarter_minus_quarter, result, remainder;
    int32_t k;
    mod_quarter_minus_quarter = (a & (one_quarter - 1)) - one_quarter;
    result = exp_small(ih_saturating_left_shift(mod_quarter_minus_quarter, 5));
    remainder = ih_sub32(mod_quarter_minus_quarter, a);
    for (k = 0; k < 7; k++) {
        int32_t bit = -(int32_t)(((uint32_t)remainder >> (24 + k)) & 1u);
        result = select32(bit, ih_srdhm(result, exp_barrel[k]), result);
    }
    return select32(-(int32_t)(a == 0), INT32_MAX, result);
}

int32_t ih_one_over_one_plus_x(int32_t y)
{
    const int32_t c48over17 = 1515870810;     /* 48/17 in Q2 */
    const int32_t c_neg32over17 = -1010580540; /* -32/17 in Q2 */
    int64_t sum = (int64_t)y + INT32_MAX; /* RoundingHalfSum(y, One) */
    int32_t half, x, i;
    if (sum >= 0) {
        sum++;
    } else {
        sum--;
    }
    half = (int32_t)(sum / 2);
    x = ih_add32(c48over17, ih_srdhm(half, c_neg32over17));
    for (i = 0; i < 3; i++) {
        int32_t half_times_x = ih_srdhm(half, x);
        int32_t one_minus = ih_sub32((int32_t)1 << 29, half_times_x);
        x = ih_add32(x, ih_saturating_left_shift(ih_srdhm(x, one_minus), 2));
    }
    return ih_saturating_left_shift(x, 1);
}

int32_t ih_clz32(uint32_t x)
{
    int32_t n = 0;
    if (x == 0) {
        return 32;
    }
    while (!(x & 0x80000000u)) {
        x <<= 1;
        n++;
    }
    return n;
}

int32_t ih_reciprocal(int32_t x, int32_t x_integer_bits, int32_t *bits_over_unit)
{
    int32_t headroom_plus_one = ih_clz32((uint32_t)x);
    uint32_t shifted = headroom_plus_one >= 32 ? 0u : (uint32_t)x << headroom_plus_one;
    *bits_over_unit = x_integer_bits - headroom_plus_one;
    return ih_one_over_one_plus_x(ih_i32(shifted - 0x80000000u));
}
