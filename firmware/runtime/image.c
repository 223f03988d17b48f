/*
 * image.c - see image.h. The checks mirror plan.DecodeImage (Go) and go
 * further: every layer's shapes and parameters are checked against what its
 * kernel indexes, and every schedule against the task counts it implies, so
 * that a task computed from an accepted image stays inside its tensors.
 */
#include "image.h"
#include "crc32.h"
#include "le.h"

const char *ih_strerror(int err)
{
    switch (err) {
    case IH_OK:
        return "ok";
    case IH_ERR_NO_IMAGE:
        return "no plan image";
    case IH_ERR_SHORT:
        return "image shorter than its header or records";
    case IH_ERR_MAGIC:
        return "bad image magic";
    case IH_ERR_VERSION:
        return "unsupported image version or header size";
    case IH_ERR_SIZE:
        return "image size differs from its header";
    case IH_ERR_CRC:
        return "image CRC-32 mismatch";
    case IH_ERR_HEADER:
        return "image header field out of range";
    case IH_ERR_TENSOR:
        return "bad tensor record";
    case IH_ERR_LAYER:
        return "bad layer record";
    case IH_ERR_SCHEDULE:
        return "bad schedule record";
    case IH_ERR_QUANT:
        return "quantization index out of range";
    case IH_ERR_NVM:
        return "plan needs more NVM than the board has";
    case IH_ERR_SRAM:
        return "a task needs more SRAM than IH_SRAM_OUT_BYTES";
    case IH_ERR_TASKS:
        return "bad task count or index";
    case IH_ERR_INPUT:
        return "input has the wrong size";
    case IH_ERR_STATE:
        return "runtime not booted";
    case IH_ERR_RULE:
        return "bad run-time rule section";
    case IH_ERR_JIT:
        return "bad jit section";
    default:
        return "unknown error";
    }
}

/* Largest stride, dilation, kernel or padding accepted: with dimensions of
 * at most 65535 every window coordinate then stays far inside int32. */
#define IH_MAX_WINDOW 4096

void ih_tensor_get(const ih_image *img, uint16_t i, ih_tensor *t)
{
    const uint8_t *r = img->base + img->tensors_at + (uint32_t)i * IH_TENSOR_REC_BYTES;
    t->dtype = r[0];
    t->flags = r[1];
    t->zero_point = (int32_t)(int16_t)ih_rd16(r + 2);
    t->shape.n = ih_rd16(r + 4);
    t->shape.h = ih_rd16(r + 6);
    t->shape.w = ih_rd16(r + 8);
    t->shape.c = ih_rd16(r + 10);
    t->offset = ih_rd32(r + 12);
    t->bytes = ih_rd32(r + 16);
}

void ih_layer_get(const ih_image *img, uint16_t i, ih_layer *l)
{
    const uint8_t *r = img->base + img->layers_at + (uint32_t)i * IH_LAYER_REC_BYTES;
    int k;
    l->op = r[0];
    l->n_inputs = r[1];
    l->input[0] = ih_rd16(r + 4);
    l->input[1] = ih_rd16(r + 6);
    l->output = ih_rd16(r + 8);
    l->weights = ih_rd16(r + 10);
    l->bias = ih_rd16(r + 12);
    for (k = 0; k < IH_LAYER_PARAMS; k++) {
        l->params[k] = ih_rdi32(r + 16 + 4 * k);
    }
}

void ih_schedule_get(const ih_image *img, uint16_t i, ih_schedule *s)
{
    const uint8_t *r = img->base + img->sched_at + (uint32_t)i * IH_SCHEDULE_REC_BYTES;
    s->tile_h = ih_rd16(r + 0);
    s->tile_w = ih_rd16(r + 2);
    s->tile_c = ih_rd16(r + 4);
    s->tile_r = ih_rd16(r + 6);
    s->commit_every = ih_rd16(r + 8);
    s->flags = ih_rd16(r + 10);
    s->first_task = ih_rd32(r + 12);
    s->tasks = ih_rd32(r + 16);
    s->partial_base = ih_rd32(r + 20);
    s->partial_slots = ih_rd16(r + 24);
    s->partial_slot_bytes = ih_rd32(r + 28);
}

const uint8_t *ih_quant_entries(const ih_image *img, uint32_t first)
{
    return img->base + img->quant_at + first * IH_QUANT_REC_BYTES;
}

uint32_t ih_jit_chunk_pixels(const ih_image *img, uint16_t li)
{
    return ih_rd32(img->base + img->jit_at + IH_JIT_HEAD_BYTES + 4u * li);
}

uint32_t ih_rule_need(const ih_image *img, uint32_t i)
{
    return ih_rd32(img->base + img->rule_at + IH_RULE_HEAD_BYTES + 4u * i);
}

const uint8_t *ih_const_data(const ih_image *img, const ih_tensor *t)
{
    return img->base + t->offset;
}

int32_t ih_layer_reduction(const ih_layer *l, const ih_tensor *in0)
{
    switch (l->op) {
    case IH_OP_CONV_2D:
        return in0->shape.c;
    case IH_OP_FULLY_CONNECTED:
        return l->params[1];
    case IH_OP_AVERAGE_POOL_2D:
        return l->params[0];
    default:
        return 0;
    }
}

/* *out = a * b; 0 if it would pass limit. */
static int mul_le(uint32_t a, uint32_t b, uint32_t limit, uint32_t *out)
{
    if (a != 0 && b > limit / a) {
        return 0;
    }
    *out = a * b;
    return 1;
}

static uint32_t dtype_size(uint8_t d)
{
    switch (d) {
    case IH_INT8:
        return 1;
    case IH_INT32:
    case IH_FLOAT32:
        return 4;
    default:
        return 0;
    }
}

static uint32_t shape_elems(const ih_shape *s)
{
    return (uint32_t)s->n * (uint32_t)s->h * (uint32_t)s->w * (uint32_t)s->c;
}

static int in_range(int32_t v, int32_t lo, int32_t hi) { return v >= lo && v <= hi; }

static uint32_t ceil_div(uint32_t a, uint32_t b) { return (a + b - 1) / b; }

/* check_tensor: constants lie after every record (records_end). */
static int check_tensor(const ih_image *img, uint16_t i, uint32_t records_end)
{
    ih_tensor t;
    uint32_t size, elems = 1;
    ih_tensor_get(img, i, &t);
    size = dtype_size(t.dtype);
    if (size == 0) {
        return IH_ERR_TENSOR;
    }
    if (!mul_le(elems, (uint32_t)t.shape.n, 0x7FFFFFFFu, &elems) || !mul_le(elems, (uint32_t)t.shape.h, 0x7FFFFFFFu, &elems) ||
        !mul_le(elems, (uint32_t)t.shape.w, 0x7FFFFFFFu, &elems) || !mul_le(elems, (uint32_t)t.shape.c, 0x7FFFFFFFu, &elems) ||
        !mul_le(elems, size, 0x7FFFFFFFu, &elems)) {
        return IH_ERR_TENSOR;
    }
    if (elems != t.bytes) {
        return IH_ERR_TENSOR;
    }
    if (t.flags & IH_TENSOR_CONST) {
        if (t.offset < records_end || t.offset > img->bytes || t.bytes > img->bytes - t.offset) {
            return IH_ERR_TENSOR;
        }
    } else if (t.offset != IH_UNPLACED) {
        /* Activations live after the NVM header, inside the plan's NVM. */
        if (t.offset < IH_NVM_HEADER_BYTES || t.offset > img->nvm_bytes || t.bytes > img->nvm_bytes - t.offset) {
            return IH_ERR_TENSOR;
        }
    }
    return IH_OK;
}

/* A placed activation of data type dtype (0: any) with no zero dimension. */
static int activation(const ih_image *img, uint16_t ref, uint8_t dtype, ih_tensor *t)
{
    if (ref >= img->n_tensors) {
        return 0;
    }
    ih_tensor_get(img, ref, t);
    if ((t->flags & IH_TENSOR_CONST) || t->offset == IH_UNPLACED || (dtype != 0 && t->dtype != dtype)) {
        return 0;
    }
    return t->shape.n > 0 && t->shape.h > 0 && t->shape.w > 0 && t->shape.c > 0;
}

/* A constant of data type dtype holding exactly elems values. */
static int constant(const ih_image *img, uint16_t ref, uint8_t dtype, uint32_t elems)
{
    ih_tensor t;
    if (ref >= img->n_tensors) {
        return 0;
    }
    ih_tensor_get(img, ref, &t);
    return (t.flags & IH_TENSOR_CONST) && t.dtype == dtype && t.bytes == elems * dtype_size(dtype);
}

static int bias_ok(const ih_image *img, uint16_t ref, uint32_t n)
{
    return ref == IH_NO_TENSOR || constant(img, ref, IH_INT32, n);
}

static int quant_ok(const ih_image *img, int32_t first, int32_t count)
{
    return first >= 0 && count >= 1 && (uint32_t)first + (uint32_t)count <= img->n_quant;
}

static int act_ok(int32_t lo, int32_t hi) { return in_range(lo, -128, 127) && in_range(hi, -128, 127) && lo <= hi; }

static int window_ok(const int32_t *p, int n_positive, int n_nonneg)
{
    int k;
    for (k = 0; k < n_positive; k++) {
        if (!in_range(p[k], 1, IH_MAX_WINDOW)) {
            return 0;
        }
    }
    for (k = n_positive; k < n_positive + n_nonneg; k++) {
        if (!in_range(p[k], 0, IH_MAX_WINDOW)) {
            return 0;
        }
    }
    return 1;
}

static int check_layer(const ih_image *img, uint16_t i)
{
    ih_layer l;
    ih_tensor in0, in1, out;
    const int32_t *p;
    uint32_t n;
    ih_layer_get(img, i, &l);
    p = l.params;
    if (l.op < IH_OP_CONV_2D || l.op > IH_OP_DEQUANTIZE) {
        return IH_ERR_LAYER;
    }
    if (l.n_inputs != ((l.op == IH_OP_ADD || l.op == IH_OP_MUL) ? 2 : 1)) {
        return IH_ERR_LAYER;
    }
    if (!activation(img, l.input[0], 0, &in0) || !activation(img, l.output, 0, &out)) {
        return IH_ERR_LAYER;
    }
    if (l.n_inputs == 2 && !activation(img, l.input[1], IH_INT8, &in1)) {
        return IH_ERR_LAYER;
    }
    if ((l.weights != IH_NO_TENSOR && l.weights >= img->n_tensors) || (l.bias != IH_NO_TENSOR && l.bias >= img->n_tensors)) {
        return IH_ERR_LAYER;
    }
    if (l.op != IH_OP_RESHAPE && l.op != IH_OP_DEQUANTIZE && out.dtype != IH_INT8) {
        return IH_ERR_LAYER;
    }
    if (l.op != IH_OP_RESHAPE && l.op != IH_OP_QUANTIZE && in0.dtype != IH_INT8) {
        return IH_ERR_LAYER;
    }
    switch (l.op) {
    case IH_OP_CONV_2D:
    case IH_OP_DEPTHWISE_CONV_2D: {
        uint32_t w_elems;
        if (!window_ok(p, 6, 2) || !act_ok(p[11], p[12]) || in0.shape.n != out.shape.n) {
            return IH_ERR_LAYER;
        }
        if (l.op == IH_OP_CONV_2D) {
            if (!mul_le((uint32_t)out.shape.c, (uint32_t)(p[0] * p[1]), 0x7FFFFFFFu, &w_elems) ||
                !mul_le(w_elems, (uint32_t)in0.shape.c, 0x7FFFFFFFu, &w_elems)) {
                return IH_ERR_LAYER;
            }
        } else {
            if (!in_range(p[8], 1, 65535) || (uint32_t)out.shape.c != (uint32_t)in0.shape.c * (uint32_t)p[8]) {
                return IH_ERR_LAYER;
            }
            if (!mul_le((uint32_t)(p[0] * p[1]), (uint32_t)out.shape.c, 0x7FFFFFFFu, &w_elems)) {
                return IH_ERR_LAYER;
            }
        }
        if (!constant(img, l.weights, IH_INT8, w_elems) || !bias_ok(img, l.bias, (uint32_t)out.shape.c)) {
            return IH_ERR_LAYER;
        }
        if (!quant_ok(img, p[13], out.shape.c)) {
            return IH_ERR_QUANT;
        }
        break;
    }
    case IH_OP_FULLY_CONNECTED: {
        uint32_t rows, w_elems;
        if (p[0] < 1 || p[1] < 1 || p[2] < 1 || !act_ok(p[6], p[7])) {
            return IH_ERR_LAYER;
        }
        if (!mul_le((uint32_t)p[0], (uint32_t)p[1], 0x7FFFFFFFu, &rows) || rows != shape_elems(&in0.shape) ||
            p[2] != out.shape.c || out.shape.n > p[0]) {
            return IH_ERR_LAYER;
        }
        if (!mul_le((uint32_t)p[2], (uint32_t)p[1], 0x7FFFFFFFu, &w_elems) || !constant(img, l.weights, IH_INT8, w_elems) ||
            !bias_ok(img, l.bias, (uint32_t)p[2])) {
            return IH_ERR_LAYER;
        }
        if ((p[9] != 1 && p[9] != p[2]) || !quant_ok(img, p[8], p[9])) {
            return IH_ERR_QUANT;
        }
        break;
    }
    case IH_OP_AVERAGE_POOL_2D:
    case IH_OP_MAX_POOL_2D:
        if (!window_ok(p, 4, 2) || !act_ok(p[6], p[7]) || in0.shape.n != out.shape.n || in0.shape.c != out.shape.c) {
            return IH_ERR_LAYER;
        }
        break;
    case IH_OP_ADD:
    case IH_OP_MUL:
        n = shape_elems(&out.shape);
        if (shape_elems(&in0.shape) != n || shape_elems(&in1.shape) != n ||
            !(l.op == IH_OP_ADD ? act_ok(p[10], p[11]) : act_ok(p[5], p[6]))) {
            return IH_ERR_LAYER;
        }
        break;
    case IH_OP_RESHAPE:
        if (in0.dtype != out.dtype || in0.bytes != out.bytes) {
            return IH_ERR_LAYER;
        }
        break;
    case IH_OP_SOFTMAX:
        if (shape_elems(&in0.shape) != shape_elems(&out.shape)) {
            return IH_ERR_LAYER;
        }
        break;
    case IH_OP_QUANTIZE:
        if (in0.dtype != (p[4] == 1 ? IH_FLOAT32 : IH_INT8) || shape_elems(&in0.shape) != shape_elems(&out.shape)) {
            return IH_ERR_LAYER;
        }
        break;
    case IH_OP_DEQUANTIZE:
        if (out.dtype != IH_FLOAT32 || shape_elems(&in0.shape) != shape_elems(&out.shape)) {
            return IH_ERR_LAYER;
        }
        break;
    default:
        return IH_ERR_LAYER;
    }
    return IH_OK;
}

/* Checks layer i's schedule: tiles, the task count it implies, the first
 * task, and the partial-sum slots. *next_task is the layer's first task on
 * entry, the next layer's on return. */
static int check_schedule(ih_image *img, uint16_t i, uint32_t *next_task)
{
    ih_schedule s;
    ih_layer l;
    ih_tensor in0, out;
    uint32_t steps = 1, tasks, th, tw, tc, elems, bytes, dim;
    ih_schedule_get(img, i, &s);
    ih_layer_get(img, i, &l);
    ih_tensor_get(img, l.input[0], &in0);
    ih_tensor_get(img, l.output, &out);
    if (s.tile_h < 1 || s.tile_w < 1 || s.tile_c < 1) {
        return IH_ERR_SCHEDULE;
    }
    if (l.op == IH_OP_SOFTMAX && s.tile_c < out.shape.c) {
        return IH_ERR_SCHEDULE;
    }
    dim = (uint32_t)ih_layer_reduction(&l, &in0);
    if (s.tile_r > 0) {
        if (dim == 0) {
            return IH_ERR_SCHEDULE;
        }
        steps = ceil_div(dim, s.tile_r);
    }
    tasks = (uint32_t)out.shape.n;
    if (!mul_le(tasks, ceil_div((uint32_t)out.shape.h, s.tile_h), IH_MAX_TASKS, &tasks) ||
        !mul_le(tasks, ceil_div((uint32_t)out.shape.w, s.tile_w), IH_MAX_TASKS, &tasks) ||
        !mul_le(tasks, ceil_div((uint32_t)out.shape.c, s.tile_c), IH_MAX_TASKS, &tasks) ||
        !mul_le(tasks, steps, IH_MAX_TASKS, &tasks)) {
        return IH_ERR_TASKS;
    }
    if (s.first_task != *next_task || s.tasks != tasks) {
        return IH_ERR_SCHEDULE;
    }
    *next_task += tasks;
    if (*next_task > IH_MAX_TASKS) {
        return IH_ERR_TASKS;
    }
    if (s.partial_slots > 0) {
        /* Slots lie inside the plan's NVM, used or not (as Go's decoder checks). */
        uint32_t area;
        if (s.partial_base < IH_NVM_HEADER_BYTES || s.partial_base > img->nvm_bytes ||
            !mul_le(s.partial_slots, s.partial_slot_bytes, 0x7FFFFFFFu, &area) || area > img->nvm_bytes - s.partial_base) {
            return IH_ERR_SCHEDULE;
        }
    }
    th = s.tile_h < (uint32_t)out.shape.h ? s.tile_h : (uint32_t)out.shape.h;
    tw = s.tile_w < (uint32_t)out.shape.w ? s.tile_w : (uint32_t)out.shape.w;
    tc = s.tile_c < (uint32_t)out.shape.c ? s.tile_c : (uint32_t)out.shape.c;
    elems = th * tw * tc; /* at most the tensor's elements */
    bytes = elems * dtype_size(out.dtype);
    if (steps > 1) {
        uint32_t need = s.commit_every > 0 && (uint32_t)s.commit_every + 1 < tasks ? (uint32_t)s.commit_every + 1 : tasks;
        uint32_t area;
        /* Enough slots that none is overwritten before a commit has passed
         * its reader (FORMAT.md), each big enough for a region's sums. */
        if (s.partial_slots < need || s.partial_slot_bytes < 4 * elems || s.partial_base < IH_NVM_HEADER_BYTES ||
            !mul_le(s.partial_slots, s.partial_slot_bytes, 0x7FFFFFFFu, &area) || s.partial_base > img->nvm_bytes ||
            area > img->nvm_bytes - s.partial_base) {
            return IH_ERR_SCHEDULE;
        }
        if (4 * elems > bytes) {
            bytes = 4 * elems;
        }
    }
    if (bytes > img->max_region_bytes) {
        img->max_region_bytes = bytes;
    }
    return IH_OK;
}

int ih_image_open(ih_image *img, const uint8_t *data, uint32_t bytes, uint32_t nvm_avail, unsigned flags)
{
    uint32_t next_task = 0, version, records_end, section_bytes = 0;
    unsigned rule, jit;
    uint16_t i;
    int err;
    ih_layer l;
    img->base = data;
    img->bytes = bytes;
    img->n_tasks = 0;
    img->max_region_bytes = 0;
    img->rule_at = 0;
    img->jit_at = 0;
    if (data == 0) {
        return IH_ERR_NO_IMAGE;
    }
    if (bytes < IH_IMAGE_HEADER_BYTES || bytes > 0x7FFFFFFFu) {
        return IH_ERR_SHORT;
    }
    if (ih_rd32(data) != IH_IMAGE_MAGIC) {
        return IH_ERR_MAGIC;
    }
    version = ih_rd16(data + 4);
    if ((version != IH_IMAGE_VERSION && version != IH_IMAGE_VERSION_RULE) || ih_rd16(data + 6) != IH_IMAGE_HEADER_BYTES) {
        return IH_ERR_VERSION;
    }
    if (ih_rd32(data + 8) != bytes) {
        return IH_ERR_SIZE;
    }
    if (!(flags & IH_OPEN_SKIP_CRC) && ih_crc32(data + 16, bytes - 16) != ih_rd32(data + 12)) {
        return IH_ERR_CRC;
    }
    img->n_tensors = ih_rd16(data + 16);
    img->n_layers = ih_rd16(data + 18);
    img->n_quant = ih_rd16(data + 20);
    img->word_bytes = data[22];
    img->flags = data[23];
    img->nvm_bytes = ih_rd32(data + 24);
    img->plan_tag = ih_rd32(data + 28);
    /* The rule or jit section comes with version 2, and only with it. */
    rule = (img->flags & IH_IMAGE_FLAG_RUNTIME_RULE) != 0;
    jit = (img->flags & IH_IMAGE_FLAG_JIT) != 0;
    if ((rule && jit) || (rule || jit) != (version == IH_IMAGE_VERSION_RULE)) {
        return IH_ERR_VERSION;
    }
    if ((img->word_bytes != 2 && img->word_bytes != 4) || img->n_layers == 0 || img->n_tensors == 0 ||
        img->n_tensors == IH_NO_TENSOR || img->nvm_bytes < IH_NVM_HEADER_BYTES || img->nvm_bytes > 0x7FFFFFFFu) {
        return IH_ERR_HEADER;
    }
    if (img->nvm_bytes > nvm_avail) {
        return IH_ERR_NVM;
    }
    img->tensors_at = IH_IMAGE_HEADER_BYTES;
    img->layers_at = img->tensors_at + (uint32_t)img->n_tensors * IH_TENSOR_REC_BYTES;
    img->sched_at = img->layers_at + (uint32_t)img->n_layers * IH_LAYER_REC_BYTES;
    img->quant_at = img->sched_at + (uint32_t)img->n_layers * IH_SCHEDULE_REC_BYTES;
    records_end = img->quant_at + (uint32_t)img->n_quant * IH_QUANT_REC_BYTES;
    if (records_end > bytes) {
        return IH_ERR_SHORT;
    }
    if (version == IH_IMAGE_VERSION_RULE) {
        /* Its size from its head; checked against the tasks or layers below. */
        int bad = rule ? IH_ERR_RULE : IH_ERR_JIT;
        if (bytes - records_end < IH_RULE_HEAD_BYTES) {
            return bad;
        }
        section_bytes = ih_rd32(data + records_end + 12);
        if (section_bytes < IH_RULE_HEAD_BYTES || (section_bytes & 3u) != 0 || section_bytes > bytes - records_end) {
            return bad;
        }
        if (rule) {
            img->rule_at = records_end;
        } else {
            img->jit_at = records_end;
        }
        records_end += section_bytes;
    }
    for (i = 0; i < img->n_tensors; i++) {
        if ((err = check_tensor(img, i, records_end)) != IH_OK) {
            return err;
        }
    }
    for (i = 0; i < img->n_layers; i++) {
        if ((err = check_layer(img, i)) != IH_OK) {
            return err;
        }
    }
    for (i = 0; i < img->n_layers; i++) {
        if ((err = check_schedule(img, i, &next_task)) != IH_OK) {
            return err;
        }
    }
    if (next_task == 0) {
        return IH_ERR_TASKS;
    }
    img->n_tasks = next_task;
    if (img->rule_at != 0) {
        const uint8_t *r = data + img->rule_at;
        img->rule_cap_nf = ih_rd32(r);
        img->rule_von_mv = ih_rd16(r + 4);
        img->rule_voff_mv = ih_rd16(r + 6);
        img->rule_limit_nj = ih_rd32(r + 8);
        if (section_bytes != IH_RULE_HEAD_BYTES + 4u * next_task || img->rule_cap_nf == 0 || img->rule_voff_mv == 0 ||
            img->rule_von_mv <= img->rule_voff_mv) {
            return IH_ERR_RULE;
        }
    }
    if (img->jit_at != 0) {
        const uint8_t *r = data + img->jit_at;
        img->jit_vh_mv = ih_rd16(r);
        img->jit_von_mv = ih_rd16(r + 2);
        img->jit_snap_off = ih_rd32(r + 4);
        img->jit_snap_bytes = ih_rd32(r + 8);
        /* The area: after the NVM header, aligned, inside the plan's NVM, and
         * room for the largest region a task keeps in SRAM. */
        if (section_bytes != IH_JIT_HEAD_BYTES + 4u * img->n_layers || img->jit_vh_mv == 0 ||
            img->jit_von_mv <= img->jit_vh_mv || img->jit_snap_off < IH_NVM_HEADER_BYTES || (img->jit_snap_off & 3u) != 0 ||
            img->jit_snap_off > img->nvm_bytes || img->jit_snap_bytes > img->nvm_bytes - img->jit_snap_off ||
            img->jit_snap_bytes < IH_SNAPSHOT_HEADER_BYTES + img->max_region_bytes) {
            return IH_ERR_JIT;
        }
        for (i = 0; i < img->n_layers; i++) {
            if (ih_jit_chunk_pixels(img, i) == 0) {
                return IH_ERR_JIT;
            }
        }
    }
    /* The graph's input is the first layer's input, which no layer writes;
     * its output is the last layer's output. */
    ih_layer_get(img, 0, &l);
    img->input_tensor = l.input[0];
    for (i = 0; i < img->n_layers; i++) {
        ih_layer_get(img, i, &l);
        if (l.output == img->input_tensor) {
            return IH_ERR_LAYER;
        }
    }
    img->output_tensor = l.output;
    return IH_OK;
}
