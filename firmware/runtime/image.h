/*
 * image.h - the plan image (harness/plan/FORMAT.md), parsed and checked in
 * place: the image stays in flash or FRAM, nothing is copied. ih_image_open
 * checks everything a task later relies on (header, CRC-32, counts, every
 * tensor, layer and schedule record, every reference and every size), so
 * that no kernel ever reads or writes out of bounds on a bad image; a bad
 * image gives a negative error code and never a crash.
 */
#ifndef IH_IMAGE_H
#define IH_IMAGE_H

#include <stdint.h>

#include "kernels.h"

/* Format constants (harness/plan/encode.go, nvm.go). */
#define IH_IMAGE_MAGIC 0x4C504849u /* "IHPL" */
#define IH_IMAGE_VERSION 1u      /* without the run-time rule */
#define IH_IMAGE_VERSION_RULE 2u /* with it or jit: the rule or jit section follows the quantization entries */
#define IH_IMAGE_HEADER_BYTES 32u
#define IH_TENSOR_REC_BYTES 24u
#define IH_LAYER_REC_BYTES 128u
#define IH_SCHEDULE_REC_BYTES 32u
#define IH_QUANT_REC_BYTES 8u
#define IH_RULE_HEAD_BYTES 16u /* then one u32 per task: the energy the rule asks for, nJ */
#define IH_JIT_HEAD_BYTES 16u  /* then one u32 per layer: the most output pixels of a chunk */
#define IH_SNAPSHOT_HEADER_BYTES 16u /* valid word at +0, task at +4, chunks done at +8; the region at +16 */
#define IH_LAYER_PARAMS 28
#define IH_NO_TENSOR 0xFFFFu
#define IH_UNPLACED 0xFFFFFFFFu
#define IH_IMAGE_FLAG_RUNTIME_RULE 0x01u
#define IH_IMAGE_FLAG_JIT 0x02u /* just-in-time checkpoints (harness/plan JIT) */
#define IH_TENSOR_CONST 0x01u
#define IH_SCHEDULE_NO_COMMIT_AT_END 0x01u
#define IH_MAX_TASKS 0xFFFEu /* the progress word is 16 bits on the MSP430; 0xFFFF is reserved */

/* NVM header. */
#define IH_NVM_MAGIC 0x564E4849u /* "IHNV" */
#define IH_NVM_MAGIC_OFFSET 0u
#define IH_NVM_TAG_OFFSET 4u
#define IH_NVM_PROGRESS_OFFSET 8u
/* Bytes 12..15 belong to the port (the wire loop's started inference). */
#define IH_NVM_VERIFIED_CRC_OFFSET 16u /* the image CRC-32 the boot last verified */
#define IH_NVM_HEADER_BYTES 20u

/* Data types and operators. */
enum { IH_INT8 = 1, IH_INT32 = 2, IH_FLOAT32 = 3 };
enum {
    IH_OP_CONV_2D = 1,
    IH_OP_DEPTHWISE_CONV_2D = 2,
    IH_OP_FULLY_CONNECTED = 3,
    IH_OP_AVERAGE_POOL_2D = 4,
    IH_OP_MAX_POOL_2D = 5,
    IH_OP_ADD = 6,
    IH_OP_MUL = 7,
    IH_OP_RESHAPE = 8,
    IH_OP_SOFTMAX = 9,
    IH_OP_QUANTIZE = 10,
    IH_OP_DEQUANTIZE = 11
};

/* Error codes (negative). ih_strerror names them. */
enum {
    IH_OK = 0,
    IH_ERR_NO_IMAGE = -1,  /* no image deployed */
    IH_ERR_SHORT = -2,     /* shorter than its header or its records */
    IH_ERR_MAGIC = -3,     /* not an image */
    IH_ERR_VERSION = -4,   /* another format version or header size */
    IH_ERR_SIZE = -5,      /* header's total differs from the bytes given */
    IH_ERR_CRC = -6,       /* CRC-32 mismatch */
    IH_ERR_HEADER = -7,    /* word size, NVM size or counts out of range */
    IH_ERR_TENSOR = -8,    /* a tensor record is inconsistent */
    IH_ERR_LAYER = -9,     /* a layer record: operator, references, shapes, parameters */
    IH_ERR_SCHEDULE = -10, /* a schedule record: tiles, task counts, partial-sum slots */
    IH_ERR_QUANT = -11,    /* a quantization index out of range */
    IH_ERR_NVM = -12,      /* the plan needs more NVM than the port has */
    IH_ERR_SRAM = -13,     /* a task needs more SRAM than IH_SRAM_OUT_BYTES */
    IH_ERR_TASKS = -14,    /* no task, too many, or a task index out of range */
    IH_ERR_INPUT = -15,    /* input of the wrong size */
    IH_ERR_STATE = -16,    /* runtime call out of order (not booted) */
    IH_ERR_RULE = -17,     /* the run-time rule section: size, capacitance or thresholds */
    IH_ERR_JIT = -18       /* the jit section: size, threshold, snapshot area or chunk sizes */
};

const char *ih_strerror(int err);

typedef struct {
    const uint8_t *base;
    uint32_t bytes;
    uint16_t n_tensors, n_layers, n_quant;
    uint8_t word_bytes, flags;
    uint32_t nvm_bytes, plan_tag;
    uint32_t tensors_at, layers_at, sched_at, quant_at;
    uint32_t n_tasks;
    uint16_t input_tensor, output_tensor; /* derived: see ih_image_open */
    uint32_t max_region_bytes;            /* the largest output region or partial-sum region of a task */
    /* The run-time rule section (version 2, flag IH_IMAGE_FLAG_RUNTIME_RULE;
     * rule_at is 0 without it): the energy above brown-out at v mV is
     * rule_cap_nf * (v^2 - rule_voff_mv^2) / 2e6 nJ; a task whose need
     * (ih_rule_need) is above rule_limit_nj runs anyway. */
    uint32_t rule_at, rule_cap_nf, rule_limit_nj;
    uint16_t rule_von_mv, rule_voff_mv;
    /* The jit section (version 2, flag IH_IMAGE_FLAG_JIT; jit_at is 0
     * without it): a reading below jit_vh_mv takes a snapshot into the NVM
     * area at jit_snap_off (jit_snap_bytes), then a sleep until jit_von_mv;
     * a layer's chunks have at most ih_jit_chunk_pixels output pixels. */
    uint32_t jit_at, jit_snap_off, jit_snap_bytes;
    uint16_t jit_vh_mv, jit_von_mv;
} ih_image;

typedef struct {
    uint8_t dtype, flags;
    int32_t zero_point;
    ih_shape shape;
    uint32_t offset; /* NVM offset (activation) or image offset (constant); IH_UNPLACED */
    uint32_t bytes;
} ih_tensor;

typedef struct {
    uint8_t op, n_inputs;
    uint16_t input[2], output, weights, bias; /* IH_NO_TENSOR: none */
    int32_t params[IH_LAYER_PARAMS];
} ih_layer;

typedef struct {
    uint16_t tile_h, tile_w, tile_c, tile_r, commit_every, flags;
    uint32_t first_task, tasks, partial_base;
    uint16_t partial_slots;
    uint32_t partial_slot_bytes;
} ih_schedule;

/* Flags of ih_image_open. */
#define IH_OPEN_SKIP_CRC 0x01u

/* Parses and checks the image at data (bytes long) for a board with
 * nvm_avail bytes of NVM. The graph's input and output tensors are not
 * fields of the format: the input is layer 0's first input (which no layer
 * writes), the output the last layer's output. */
int ih_image_open(ih_image *img, const uint8_t *data, uint32_t bytes, uint32_t nvm_avail, unsigned flags);

/* Record accessors (i must be in range; ih_image_open checked the records). */
void ih_tensor_get(const ih_image *img, uint16_t i, ih_tensor *t);
void ih_layer_get(const ih_image *img, uint16_t i, ih_layer *l);
void ih_schedule_get(const ih_image *img, uint16_t i, ih_schedule *s);
/* Quantization entries from index first: (multiplier, shift) pairs. */
const uint8_t *ih_quant_entries(const ih_image *img, uint32_t first);
/* The energy the run-time rule asks for before task i, nJ (img->rule_at != 0
 * and i < n_tasks). */
uint32_t ih_rule_need(const ih_image *img, uint32_t i);
/* The most output pixels of a chunk of layer li (img->jit_at != 0). */
uint32_t ih_jit_chunk_pixels(const ih_image *img, uint16_t li);
/* A constant tensor's data in the image. */
const uint8_t *ih_const_data(const ih_image *img, const ih_tensor *t);

/* The reduced dimension of a splittable layer (CONV_2D input channels,
 * FULLY_CONNECTED depth, AVERAGE_POOL_2D filter rows); 0 if not splittable. */
int32_t ih_layer_reduction(const ih_layer *l, const ih_tensor *in0);

#endif
