/*
 * kernels.h - the int8 operator kernels, bit for bit with harness/kernels
 * and harness/refexec (Go), computing one rectangular region of an output.
 *
 * Conventions (the one difference from the Go kernels): inputs, weights and
 * biases are whole tensors, read in place (from NVM or flash), but the output
 * is the region alone, packed in row-major region order (batch, row, column,
 * channel; channel fastest), which is how a task holds it in SRAM before it
 * writes it to NVM. For the full region the packed order is the tensor's.
 *
 * Biases and (multiplier, shift) pairs are little-endian byte arrays as the
 * plan image stores them (no alignment needed). Arithmetic that Go lets wrap
 * modulo 2^32 wraps here too.
 *
 * Split reductions (harness/kernels/partial.go): *_accumulate adds one step
 * of the reduction to int32 partial sums, one per value of the region in
 * region order; *_finish turns complete sums into outputs. A finish may
 * write its int8 outputs over its own acc array (out == (int8_t *)acc): value
 * i is written at byte i after acc[i] is read.
 */
#ifndef IH_KERNELS_H
#define IH_KERNELS_H

#include <stdint.h>

typedef struct {
    int32_t n, h, w, c;
} ih_shape;

/* Batches [n0,n1), rows [y0,y1), columns [x0,x1), channels [c0,c1). */
typedef struct {
    int32_t n0, n1, y0, y1, x0, x1, c0, c1;
} ih_region;

int32_t ih_region_elems(const ih_region *r);
ih_region ih_shape_full(const ih_shape *s);

/* count (multiplier, shift) int32 pairs, 8 bytes each, little-endian; entry
 * 0 serves every channel when count is 1. */
typedef struct {
    const uint8_t *entries;
    int32_t count;
} ih_quant;

typedef struct {
    ih_shape in, out;
    int32_t kernel_h, kernel_w, stride_h, stride_w, dilation_h, dilation_w;
    int32_t pad_top, pad_left, depth_multiplier;
    int32_t input_offset, output_offset, act_min, act_max;
    ih_quant quant; /* out.c entries */
} ih_conv_params;

/* weights [out.c][kernel_h][kernel_w][in.c]; bias NULL or out.c int32. */
void ih_conv2d(const ih_conv_params *p, const int8_t *input, const int8_t *weights,
               const uint8_t *bias, int8_t *out, const ih_region *r);
/* weights [1][kernel_h][kernel_w][out.c]; output channel oc reads input
 * channel oc / depth_multiplier. */
void ih_depthwise_conv2d(const ih_conv_params *p, const int8_t *input, const int8_t *weights,
                         const uint8_t *bias, int8_t *out, const ih_region *r);
/* Adds input channels [ic0, ic1) of every output value of r to acc. */
void ih_conv2d_accumulate(const ih_conv_params *p, const int8_t *input, const int8_t *weights,
                          const ih_region *r, int32_t ic0, int32_t ic1, int32_t *acc);
void ih_conv_finish(const ih_conv_params *p, const uint8_t *bias, const int32_t *acc,
                    int8_t *out, const ih_region *r);

typedef struct {
    int32_t batches, depth, out_c;
    int32_t input_offset, filter_offset, output_offset, act_min, act_max;
    ih_quant quant; /* 1 or out_c entries */
} ih_fc_params;

/* r's n range selects batch rows and its c range outputs (y, x: [0,1)).
 * weights [out_c][depth]. */
void ih_fully_connected(const ih_fc_params *p, const int8_t *input, const int8_t *weights,
                        const uint8_t *bias, int8_t *out, const ih_region *r);
void ih_fully_connected_accumulate(const ih_fc_params *p, const int8_t *input, const int8_t *weights,
                                   const ih_region *r, int32_t d0, int32_t d1, int32_t *acc);
void ih_fully_connected_finish(const ih_fc_params *p, const uint8_t *bias, const int32_t *acc,
                               int8_t *out, const ih_region *r);

typedef struct {
    ih_shape in, out;
    int32_t filter_h, filter_w, stride_h, stride_w, pad_top, pad_left;
    int32_t act_min, act_max;
} ih_pool_params;

void ih_max_pool(const ih_pool_params *p, const int8_t *input, int8_t *out, const ih_region *r);
/* Counts only window positions inside the input; rounds half away from zero. */
void ih_average_pool(const ih_pool_params *p, const int8_t *input, int8_t *out, const ih_region *r);
/* Adds window rows [row0, row1) (from the window's top, before clipping). */
void ih_average_pool_accumulate(const ih_pool_params *p, const int8_t *input, const ih_region *r,
                                int32_t row0, int32_t row1, int32_t *acc);
void ih_average_pool_finish(const ih_pool_params *p, const int32_t *acc, int8_t *out, const ih_region *r);

typedef struct {
    ih_shape shape; /* of both inputs and the output */
    int32_t input1_offset, input2_offset, left_shift;
    int32_t input1_mult, input1_shift, input2_mult, input2_shift;
    int32_t output_mult, output_shift, output_offset, act_min, act_max;
} ih_add_params;

void ih_add(const ih_add_params *p, const int8_t *in1, const int8_t *in2, int8_t *out, const ih_region *r);

typedef struct {
    ih_shape shape;
    int32_t input1_offset, input2_offset, output_mult, output_shift, output_offset, act_min, act_max;
} ih_mul_params;

void ih_mul(const ih_mul_params *p, const int8_t *in1, const int8_t *in2, int8_t *out, const ih_region *r);

typedef struct {
    ih_shape shape;
    int32_t input_offset, multiplier, shift, output_offset;
} ih_requantize_params;

/* QUANTIZE int8 -> int8. */
void ih_requantize(const ih_requantize_params *p, const int8_t *input, int8_t *out, const ih_region *r);

typedef struct {
    ih_shape shape; /* softmax over c of every (n, y, x) */
    int32_t input_mult, input_left_shift, diff_min;
} ih_softmax_params;

/* r must cover every channel. Output scale 1/256, zero point -128. */
void ih_softmax(const ih_softmax_params *p, const int8_t *input, int8_t *out, const ih_region *r);

/* RESHAPE: copies region r of elements of elem_bytes bytes each, the shape
 * being the output's (the input has the same bytes in the same order). */
void ih_copy(const ih_shape *s, int32_t elem_bytes, const uint8_t *input, uint8_t *out, const ih_region *r);

/* QUANTIZE float32 -> int8 at the input edge (TFLite's AffineQuantize: one
 * float32 division, rounding half away from zero, clamp). input holds
 * little-endian float32 values; scale_bits is the float32 scale's bits. */
void ih_quantize_float(const ih_shape *s, uint32_t scale_bits, int32_t zero_point, const uint8_t *input,
                       int8_t *out, const ih_region *r);

/* DEQUANTIZE int8 -> float32 at the output edge: float32(scale * (q - zp));
 * out receives little-endian float32 values (4 bytes per element). */
void ih_dequantize(const ih_shape *s, uint32_t scale_bits, int32_t zero_point, const int8_t *input,
                   uint8_t *out, const ih_region *r);

#endif
