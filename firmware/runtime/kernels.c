/*
 * kernels.c - see kernels.h. Each kernel follows its Go counterpart in
 * harness/kernels; where Go computes a sum in a different but equal order
 * (the patch-and-weight-sum form of Conv2D, four accumulators in dot8), the
 * sum here is the literal one, which is the same int32 modulo 2^32.
 */
#include "kernels.h"
#include "fixedpoint.h"
#include "le.h"

int32_t ih_region_elems(const ih_region *r)
{
    if (r->n1 <= r->n0 || r->y1 <= r->y0 || r->x1 <= r->x0 || r->c1 <= r->c0) {
        return 0;
    }
    return (r->n1 - r->n0) * (r->y1 - r->y0) * (r->x1 - r->x0) * (r->c1 - r->c0);
}

ih_region ih_shape_full(const ih_shape *s)
{
    ih_region r;
    r.n0 = 0;
    r.n1 = s->n;
    r.y0 = 0;
    r.y1 = s->h;
    r.x0 = 0;
    r.x1 = s->w;
    r.c0 = 0;
    r.c1 = s->c;
    return r;
}

static int32_t imax(int32_t a, int32_t b) { return a > b ? a : b; }
static int32_t imin(int32_t a, int32_t b) { return a < b ? a : b; }

/* (x + offset) * w modulo 2^32, as unsigned bits. */
static uint32_t mac_term(int8_t x, int32_t offset, int32_t w)
{
    return ((uint32_t)(int32_t)x + (uint32_t)offset) * (uint32_t)w;
}

static const uint8_t *quant_entry(const ih_quant *q, int32_t ch)
{
    return q->entries + 8 * (q->count > 1 ? ch : 0);
}

/* Adds the bias, requantizes with the channel's entry, adds the output
 * offset and clamps (ConvParams.store and FCParams.store). */
static int8_t requant(int32_t acc, const uint8_t *bias, int32_t ch, const ih_quant *q, int32_t output_offset,
                      int32_t act_min, int32_t act_max)
{
    const uint8_t *e = quant_entry(q, ch);
    if (bias) {
        acc = ih_add32(acc, ih_rdi32(bias + 4 * ch));
    }
    acc = ih_mbqm(acc, ih_rdi32(e), ih_rdi32(e + 4));
    return (int8_t)ih_clamp32(ih_add32(acc, output_offset), act_min, act_max);
}

/* The sum over the taps inside the input of (x + input_offset) * w, over
 * input channels [ic0, ic1), for output (n, oy, ox, oc) of a convolution. */
static uint32_t conv_sum(const ih_conv_params *p, const int8_t *input, const int8_t *weights, int32_t n,
                         int32_t oy, int32_t ox, int32_t oc, int32_t ic0, int32_t ic1)
{
    int32_t in_c = p->in.c;
    int32_t tap_len = p->kernel_h * p->kernel_w * in_c;
    int32_t y0 = oy * p->stride_h - p->pad_top;
    int32_t x0 = ox * p->stride_w - p->pad_left;
    const int8_t *w_oc = weights + oc * tap_len;
    uint32_t sum = 0;
    int32_t ky, kx, ic;
    for (ky = 0; ky < p->kernel_h; ky++) {
        int32_t iy = y0 + ky * p->dilation_h;
        if (iy < 0 || iy >= p->in.h) {
            continue;
        }
        for (kx = 0; kx < p->kernel_w; kx++) {
            int32_t ix = x0 + kx * p->dilation_w;
            const int8_t *x, *w;
            if (ix < 0 || ix >= p->in.w) {
                continue;
            }
            x = input + ((n * p->in.h + iy) * p->in.w + ix) * in_c;
            w = w_oc + (ky * p->kernel_w + kx) * in_c;
            for (ic = ic0; ic < ic1; ic++) {
                sum += mac_term(x[ic], p->input_offset, w[ic]);
            }
        }
    }
    return sum;
}

void ih_conv2d(const ih_conv_params *p, const int8_t *input, const int8_t *weights, const uint8_t *bias,
               int8_t *out, const ih_region *r)
{
    int32_t n, oy, ox, oc, i = 0;
    for (n = r->n0; n < r->n1; n++) {
        for (oy = r->y0; oy < r->y1; oy++) {
            for (ox = r->x0; ox < r->x1; ox++) {
                for (oc = r->c0; oc < r->c1; oc++) {
                    int32_t acc = ih_i32(conv_sum(p, input, weights, n, oy, ox, oc, 0, p->in.c));
                    out[i++] = requant(acc, bias, oc, &p->quant, p->output_offset, p->act_min, p->act_max);
                }
            }
        }
    }
}

void ih_conv2d_accumulate(const ih_conv_params *p, const int8_t *input, const int8_t *weights,
                          const ih_region *r, int32_t ic0, int32_t ic1, int32_t *acc)
{
    int32_t n, oy, ox, oc, i = 0;
    for (n = r->n0; n < r->n1; n++) {
        for (oy = r->y0; oy < r->y1; oy++) {
            for (ox = r->x0; ox < r->x1; ox++) {
                for (oc = r->c0; oc < r->c1; oc++) {
                    uint32_t s = conv_sum(p, input, weights, n, oy, ox, oc, ic0, ic1);
                    acc[i] = ih_i32((uint32_t)acc[i] + s);
                    i++;
                }
            }
        }
    }
}

void ih_conv_finish(const ih_conv_params *p, const uint8_t *bias, const int32_t *acc, int8_t *out,
                    const ih_region *r)
{
    int32_t n, oy, ox, oc, i = 0;
    for (n = r->n0; n < r->n1; n++) {
        for (oy = r->y0; oy < r->y1; oy++) {
            for (ox = r->x0; ox < r->x1; ox++) {
                for (oc = r->c0; oc < r->c1; oc++) {
                    int32_t a = acc[i];
                    out[i] = requant(a, bias, oc, &p->quant, p->output_offset, p->act_min, p->act_max);
                    i++;
                }
            }
        }
    }
}

void ih_depthwise_conv2d(const ih_conv_params *p, const int8_t *input, const int8_t *weights,
                         const uint8_t *bias, int8_t *out, const ih_region *r)
{
    int32_t in_c = p->in.c, out_c = p->out.c, mult = p->depth_multiplier;
    int32_t n, oy, ox, oc, ky, kx, i = 0;
    for (n = r->n0; n < r->n1; n++) {
        for (oy = r->y0; oy < r->y1; oy++) {
            int32_t y0 = oy * p->stride_h - p->pad_top;
            for (ox = r->x0; ox < r->x1; ox++) {
                int32_t x0 = ox * p->stride_w - p->pad_left;
                for (oc = r->c0; oc < r->c1; oc++) {
                    int32_t ic = oc / mult;
                    uint32_t acc = 0;
                    for (ky = 0; ky < p->kernel_h; ky++) {
                        int32_t iy = y0 + ky * p->dilation_h;
                        if (iy < 0 || iy >= p->in.h) {
                            continue;
                        }
                        for (kx = 0; kx < p->kernel_w; kx++) {
                            int32_t ix = x0 + kx * p->dilation_w;
                            if (ix < 0 || ix >= p->in.w) {
                                continue;
                            }
                            acc += mac_term(input[((n * p->in.h + iy) * p->in.w + ix) * in_c + ic], p->input_offset,
                                            weights[(ky * p->kernel_w + kx) * out_c + oc]);
                        }
                    }
                    out[i++] = requant(ih_i32(acc), bias, oc, &p->quant, p->output_offset, p->act_min, p->act_max);
                }
            }
        }
    }
}

/* sum over k in [d0, d1) of (x + input_offset) * (w + filter_offset). */
static uint32_t fc_sum(const ih_fc_params *p, const int8_t *input, const int8_t *weights, int32_t b, int32_t o,
                       int32_t d0, int32_t d1)
{
    const int8_t *x = input + b * p->depth;
    const int8_t *w = weights + o * p->depth;
    uint32_t sum = 0;
    int32_t k;
    for (k = d0; k < d1; k++) {
        sum += mac_term(x[k], p->input_offset, ih_add32(w[k], p->filter_offset));
    }
    return sum;
}

void ih_fully_connected(const ih_fc_params *p, const int8_t *input, const int8_t *weights, const uint8_t *bias,
                        int8_t *out, const ih_region *r)
{
    int32_t b, y, x, o, i = 0;
    for (b = r->n0; b < r->n1; b++) {
        for (y = r->y0; y < r->y1; y++) {
            for (x = r->x0; x < r->x1; x++) {
                for (o = r->c0; o < r->c1; o++) {
                    int32_t acc = ih_i32(fc_sum(p, input, weights, b, o, 0, p->depth));
                    out[i++] = requant(acc, bias, o, &p->quant, p->output_offset, p->act_min, p->act_max);
                }
            }
        }
    }
}

void ih_fully_connected_accumulate(const ih_fc_params *p, const int8_t *input, const int8_t *weights,
                                   const ih_region *r, int32_t d0, int32_t d1, int32_t *acc)
{
    int32_t b, y, x, o, i = 0;
    for (b = r->n0; b < r->n1; b++) {
        for (y = r->y0; y < r->y1; y++) {
            for (x = r->x0; x < r->x1; x++) {
                for (o = r->c0; o < r->c1; o++) {
                    acc[i] = ih_i32((uint32_t)acc[i] + fc_sum(p, input, weights, b, o, d0, d1));
                    i++;
                }
            }
        }
    }
}

void ih_fully_connected_finish(const ih_fc_params *p, const uint8_t *bias, const int32_t *acc, int8_t *out,
                               const ih_region *r)
{
    int32_t b, y, x, o, i = 0;
    for (b = r->n0; b < r->n1; b++) {
        for (y = r->y0; y < r->y1; y++) {
            for (x = r->x0; x < r->x1; x++) {
                for (o = r->c0; o < r->c1; o++) {
                    int32_t a = acc[i];
                    out[i] = requant(a, bias, o, &p->quant, p->output_offset, p->act_min, p->act_max);
                    i++;
                }
            }
        }
    }
}

/* The input rows [*y0, *y1) and columns [*x0, *x1) of output (oy, ox),
 * cut to the input. */
static void pool_window(const ih_pool_params *p, int32_t oy, int32_t ox, int32_t *y0, int32_t *y1, int32_t *x0,
                        int32_t *x1)
{
    int32_t ys = oy * p->stride_h - p->pad_top;
    int32_t xs = ox * p->stride_w - p->pad_left;
    *y1 = imin(ys + p->filter_h, p->in.h);
    *x1 = imin(xs + p->filter_w, p->in.w);
    *y0 = imax(ys, 0);
    *x0 = imax(xs, 0);
}

void ih_max_pool(const ih_pool_params *p, const int8_t *input, int8_t *out, const ih_region *r)
{
    int32_t n, oy, ox, c, iy, ix, i = 0;
    for (n = r->n0; n < r->n1; n++) {
        for (oy = r->y0; oy < r->y1; oy++) {
            for (ox = r->x0; ox < r->x1; ox++) {
                int32_t y0, y1, x0, x1;
                pool_window(p, oy, ox, &y0, &y1, &x0, &x1);
                for (c = r->c0; c < r->c1; c++) {
                    int32_t m = -128;
                    for (iy = y0; iy < y1; iy++) {
                        for (ix = x0; ix < x1; ix++) {
                            m = imax(m, input[((n * p->in.h + iy) * p->in.w + ix) * p->in.c + c]);
                        }
                    }
                    out[i++] = (int8_t)ih_clamp32(m, p->act_min, p->act_max);
                }
            }
        }
    }
}

/* sum / count rounded half away from zero (0 for an empty window). */
static int32_t rounded_average(int32_t sum, int32_t count)
{
    if (count <= 0) {
        return 0;
    }
    if (sum > 0) {
        return ih_add32(sum, count / 2) / count;
    }
    return ih_sub32(sum, count / 2) / count;
}

void ih_average_pool(const ih_pool_params *p, const int8_t *input, int8_t *out, const ih_region *r)
{
    int32_t n, oy, ox, c, iy, ix, i = 0;
    for (n = r->n0; n < r->n1; n++) {
        for (oy = r->y0; oy < r->y1; oy++) {
            for (ox = r->x0; ox < r->x1; ox++) {
                int32_t y0, y1, x0, x1, count;
                pool_window(p, oy, ox, &y0, &y1, &x0, &x1);
                count = imax(y1 - y0, 0) * imax(x1 - x0, 0);
                for (c = r->c0; c < r->c1; c++) {
                    uint32_t sum = 0;
                    for (iy = y0; iy < y1; iy++) {
                        for (ix = x0; ix < x1; ix++) {
                            sum += (uint32_t)(int32_t)input[((n * p->in.h + iy) * p->in.w + ix) * p->in.c + c];
                        }
                    }
                    out[i++] = (int8_t)ih_clamp32(rounded_average(ih_i32(sum), count), p->act_min, p->act_max);
                }
            }
        }
    }
}

void ih_average_pool_accumulate(const ih_pool_params *p, const int8_t *input, const ih_region *r, int32_t row0,
                                int32_t row1, int32_t *acc)
{
    int32_t n, oy, ox, c, iy, ix, i = 0;
    for (n = r->n0; n < r->n1; n++) {
        for (oy = r->y0; oy < r->y1; oy++) {
            int32_t top = oy * p->stride_h - p->pad_top;
            int32_t ylo = imax(top + row0, 0), yhi = imin(top + row1, p->in.h);
            for (ox = r->x0; ox < r->x1; ox++) {
                int32_t y0, y1, x0, x1;
                pool_window(p, oy, ox, &y0, &y1, &x0, &x1);
                for (c = r->c0; c < r->c1; c++) {
                    uint32_t sum = 0;
                    for (iy = ylo; iy < yhi; iy++) {
                        for (ix = x0; ix < x1; ix++) {
                            sum += (uint32_t)(int32_t)input[((n * p->in.h + iy) * p->in.w + ix) * p->in.c + c];
                        }
                    }
                    acc[i] = ih_i32((uint32_t)acc[i] + sum);
                    i++;
                }
            }
        }
    }
}

void ih_average_pool_finish(const ih_pool_params *p, const int32_t *acc, int8_t *out, const ih_region *r)
{
    int32_t n, oy, ox, c, i = 0;
    for (n = r->n0; n < r->n1; n++) {
        for (oy = r->y0; oy < r->y1; oy++) {
            for (ox = r->x0; ox < r->x1; ox++) {
                int32_t y0, y1, x0, x1, count;
                pool_window(p, oy, ox, &y0, &y1, &x0, &x1);
                count = imax(y1 - y0, 0) * imax(x1 - x0, 0);
                for (c = r->c0; c < r->c1; c++) {
                    int32_t sum = acc[i];
                    out[i] = (int8_t)ih_clamp32(rounded_average(sum, count), p->act_min, p->act_max);
                    i++;
                }
            }
        }
    }
}

/* The flat index of (n, y, x, c) in a tensor of shape s. */
static int32_t flat(const ih_shape *s, int32_t n, int32_t y, int32_t x, int32_t c)
{
    return ((n * s->h + y) * s->w + x) * s->c + c;
}

void ih_add(const ih_add_params *p, const int8_t *in1, const int8_t *in2, int8_t *out, const ih_region *r)
{
    int32_t n, y, x, c, i = 0;
    uint32_t ls = (uint32_t)p->left_shift;
    for (n = r->n0; n < r->n1; n++) {
        for (y = r->y0; y < r->y1; y++) {
            for (x = r->x0; x < r->x1; x++) {
                for (c = r->c0; c < r->c1; c++) {
                    int32_t j = flat(&p->shape, n, y, x, c);
                    int32_t a = ih_mbqm_smaller_than_one(ih_shl32(ih_add32(in1[j], p->input1_offset), ls),
                                                         p->input1_mult, p->input1_shift);
                    int32_t b = ih_mbqm_smaller_than_one(ih_shl32(ih_add32(in2[j], p->input2_offset), ls),
                                                         p->input2_mult, p->input2_shift);
                    int32_t s = ih_mbqm_smaller_than_one(ih_add32(a, b), p->output_mult, p->output_shift);
                    out[i++] = (int8_t)ih_clamp32(ih_add32(s, p->output_offset), p->act_min, p->act_max);
                }
            }
        }
    }
}

void ih_mul(const ih_mul_params *p, const int8_t *in1, const int8_t *in2, int8_t *out, const ih_region *r)
{
    int32_t n, y, x, c, i = 0;
    for (n = r->n0; n < r->n1; n++) {
        for (y = r->y0; y < r->y1; y++) {
            for (x = r->x0; x < r->x1; x++) {
                for (c = r->c0; c < r->c1; c++) {
                    int32_t j = flat(&p->shape, n, y, x, c);
                    int32_t prod = ih_mul32(ih_add32(in1[j], p->input1_offset), ih_add32(in2[j], p->input2_offset));
                    int32_t v = ih_mbqm(prod, p->output_mult, p->output_shift);
                    out[i++] = (int8_t)ih_clamp32(ih_add32(v, p->output_offset), p->act_min, p->act_max);
                }
            }
        }
    }
}

void ih_requantize(const ih_requantize_params *p, const int8_t *input, int8_t *out, const ih_region *r)
{
    int32_t n, y, x, c, i = 0;
    for (n = r->n0; n < r->n1; n++) {
        for (y = r->y0; y < r->y1; y++) {
            for (x = r->x0; x < r->x1; x++) {
                for (c = r->c0; c < r->c1; c++) {
                    int32_t j = flat(&p->shape, n, y, x, c);
                    int32_t v = ih_mbqm(ih_add32(input[j], p->input_offset), p->multiplier, p->shift);
                    out[i++] = (int8_t)ih_clamp32(ih_add32(v, p->output_offset), -128, 127);
                }
            }
        }
    }
}

/* TFLite's accumulation format of the sum of exponentials: Q12.19. */
#define ACCUMULATION_INTEGER_BITS 12

static void softmax_row(const ih_softmax_params *p, const int8_t *in, int8_t *out, int32_t len)
{
    int32_t max_in = -128, i, scale, bits_over_unit;
    uint32_t sum = 0;
    for (i = 0; i < len; i++) {
        max_in = imax(max_in, in[i]);
    }
    /* Every value's exp is computed, also those below diff_min, which
     * TFLite skips, and then kept or not: the row's cycles do not depend
     * on its values (ih_exp_on_negative_values_q5: the plan prices a task
     * before its data exists). The results are TFLite's. */
    for (i = 0; i < len; i++) {
        int32_t d = (int32_t)in[i] - max_in;
        int32_t z = ih_mbqm_greater_than_one(d, p->input_mult, p->input_left_shift);
        uint32_t e = (uint32_t)ih_rdbpot(ih_exp_on_negative_values_q5(z), ACCUMULATION_INTEGER_BITS);
        sum += e & (0u - (uint32_t)(d >= p->diff_min));
    }
    scale = ih_reciprocal(ih_i32(sum), ACCUMULATION_INTEGER_BITS, &bits_over_unit);
    for (i = 0; i < len; i++) {
        int32_t d = (int32_t)in[i] - max_in;
        int32_t z, e, o;
        z = ih_mbqm_greater_than_one(d, p->input_mult, p->input_left_shift);
        e = ih_exp_on_negative_values_q5(z);
        o = ih_sub32(ih_rdbpot(ih_srdhm(scale, e), ih_add32(bits_over_unit, 31 - 8)), 128);
        o = ih_clamp32(o, -128, 127);
        out[i] = (int8_t)(d < p->diff_min ? -128 : o);
    }
}

void ih_softmax(const ih_softmax_params *p, const int8_t *input, int8_t *out, const ih_region *r)
{
    int32_t n, y, x, i = 0;
    int32_t len = p->shape.c;
    for (n = r->n0; n < r->n1; n++) {
        for (y = r->y0; y < r->y1; y++) {
            for (x = r->x0; x < r->x1; x++) {
                softmax_row(p, input + flat(&p->shape, n, y, x, 0), out + i, len);
                i += len;
            }
        }
    }
}

void ih_copy(const ih_shape *s, int32_t elem_bytes, const uint8_t *input, uint8_t *out, const ih_region *r)
{
    int32_t n, y, x, k, i = 0;
    int32_t run = (r->c1 - r->c0) * elem_bytes;
    for (n = r->n0; n < r->n1; n++) {
        for (y = r->y0; y < r->y1; y++) {
            for (x = r->x0; x < r->x1; x++) {
                const uint8_t *src = input + flat(s, n, y, x, r->c0) * elem_bytes;
                for (k = 0; k < run; k++) {
                    out[i++] = src[k];
                }
            }
        }
    }
}

typedef union {
    uint32_t u;
    float f;
} f32bits;

/* Go's math.Round of a float32 value: half away from zero. */
static float round_half_away(float f)
{
    float t;
    int32_t i;
    if (!(f < 8388608.0f && f > -8388608.0f)) {
        return f; /* already an integer, or NaN or an infinity */
    }
    i = (int32_t)f; /* truncates toward zero, exactly */
    t = (float)i;
    if (f - t >= 0.5f) {
        t += 1.0f;
    } else if (f - t <= -0.5f) {
        t -= 1.0f;
    }
    return t;
}

void ih_quantize_float(const ih_shape *s, uint32_t scale_bits, int32_t zero_point, const uint8_t *input,
                       int8_t *out, const ih_region *r)
{
    int32_t n, y, x, c, i = 0;
    f32bits scale;
    scale.u = scale_bits;
    for (n = r->n0; n < r->n1; n++) {
        for (y = r->y0; y < r->y1; y++) {
            for (x = r->x0; x < r->x1; x++) {
                for (c = r->c0; c < r->c1; c++) {
                    f32bits v;
                    float q;
                    int64_t qv;
                    v.u = ih_rd32(input + 4 * flat(s, n, y, x, c));
                    q = round_half_away(v.f / scale.f);
                    if (q != q) {
                        qv = zero_point; /* NaN */
                    } else if (q >= 4294967296.0f) {
                        qv = INT64_C(4294967296); /* saturates: see README */
                    } else if (q <= -4294967296.0f) {
                        qv = -INT64_C(4294967296);
                    } else {
                        qv = (int64_t)q + zero_point;
                    }
                    if (qv < -128) {
                        qv = -128;
                    }
                    if (qv > 127) {
                        qv = 127;
                    }
                    out[i++] = (int8_t)qv;
                }
            }
        }
    }
}

void ih_dequantize(const ih_shape *s, uint32_t scale_bits, int32_t zero_point, const int8_t *input, uint8_t *out,
                   const ih_region *r)
{
    int32_t n, y, x, c, i = 0;
    f32bits scale;
    scale.u = scale_bits;
    for (n = r->n0; n < r->n1; n++) {
        for (y = r->y0; y < r->y1; y++) {
            for (x = r->x0; x < r->x1; x++) {
                for (c = r->c0; c < r->c1; c++) {
                    f32bits v;
                    /* Go: float32(scale * float64(int32(q) - zero_point)), the
                     * scale being a float32 value held in a float64. */
                    v.f = (float)((double)scale.f * (double)ih_sub32(input[flat(s, n, y, x, c)], zero_point));
                    ih_wr32(out + 4 * i, v.u);
                    i++;
                }
            }
        }
    }
}
