/*
 * runtime.c - see runtime.h.
 */
#include "runtime.h"
#include "kernels.h"
#include "le.h"
#include "port.h"

/* The task's SRAM: the output region, or the partial sums (int32-aligned). */
static int32_t sram_buf[(IH_SRAM_OUT_BYTES + 3) / 4];

/* Volatile execution state: lost at every brown-out, rebuilt at boot. */
static struct {
    ih_image img;
    ih_config cfg;
    uint8_t booted;
    uint8_t running;    /* an inference is in progress (progress < tasks) */
    uint32_t next;      /* the next task to run */
    uint32_t committed; /* the progress word, as last read or written */
    uint8_t jit_restored; /* the boot restored jit_k chunks of task next into sram_buf */
    uint32_t jit_k;
} rt;

static ih_rt_stats stats;

void ih_config_default(ih_config *cfg) { cfg->check_crc = 1; }

static uint32_t dtype_bytes(uint8_t d) { return d == IH_INT8 ? 1u : 4u; }

#ifdef IH_BROKEN_VOLATILE_PROGRESS
/* DELIBERATELY BROKEN, for the emulated board's test only: the progress word
 * lives in volatile SRAM that the start-up code does not zero, as a firmware
 * tested on bench power alone might keep it. A real power failure loses it;
 * the emulated board must show that (boards/emulated, broken_test.go). */
static uint32_t volatile_progress __attribute__((section(".noinit")));
#endif

static uint32_t read_progress(void)
{
#ifdef IH_BROKEN_VOLATILE_PROGRESS
    return volatile_progress;
#else
    const uint8_t *nvm = port_nvm();
    if (rt.img.word_bytes == 2) {
        uint16_t v = ih_rd16(nvm + IH_NVM_PROGRESS_OFFSET);
        return v == 0xFFFFu ? 0xFFFFFFFFu : v;
    }
    return ih_rd32(nvm + IH_NVM_PROGRESS_OFFSET);
#endif
}

/* One NVM word (the image's word size) at off: written alone. */
static void write_word(uint32_t off, uint32_t v)
{
    uint8_t w[4];
    ih_wr32(w, v);
    port_nvm_write(off, w, rt.img.word_bytes);
}

static uint32_t read_word(uint32_t off)
{
    const uint8_t *nvm = port_nvm();
    return rt.img.word_bytes == 2 ? ih_rd16(nvm + off) : ih_rd32(nvm + off);
}

static void jit_resume(uint32_t prog);

/* The progress word: one NVM word, nothing else written with it. */
static void write_progress(uint32_t v)
{
#ifdef IH_BROKEN_VOLATILE_PROGRESS
    volatile_progress = v;
#else
    uint8_t w[4];
    ih_wr32(w, v);
    port_nvm_write(IH_NVM_PROGRESS_OFFSET, w, rt.img.word_bytes);
#endif
    rt.committed = v;
}

/* The image's CRC-32 field, or 0 without a header to read it from. */
static uint32_t image_crc_field(void)
{
    const uint8_t *image = port_image();
    return image && port_image_bytes() >= IH_IMAGE_HEADER_BYTES ? ih_rd32(image + 12) : 0u;
}

/* Whether the NVM header records this image's CRC as verified. */
static int image_verified(void)
{
    return port_nvm_bytes() >= IH_NVM_HEADER_BYTES && port_image() && port_image_bytes() >= IH_IMAGE_HEADER_BYTES &&
           ih_rd32(port_nvm() + IH_NVM_VERIFIED_CRC_OFFSET) == image_crc_field();
}

int ih_rt_boot(const ih_config *cfg)
{
    const uint8_t *nvm;
    uint32_t prog;
    int err, verify;
    rt.booted = 0;
    rt.running = 0;
    rt.jit_restored = 0;
    if (cfg) {
        rt.cfg = *cfg;
    } else {
        ih_config_default(&rt.cfg);
    }
    stats.boots++;
    verify = rt.cfg.check_crc && !image_verified();
    err = ih_image_open(&rt.img, port_image(), port_image_bytes(), port_nvm_bytes(), verify ? 0u : IH_OPEN_SKIP_CRC);
    if (err != IH_OK) {
        return err;
    }
    if (verify) {
        /* Recorded only once the whole image is accepted: a boot cut before
         * this write checks the image again. */
        uint8_t w[4];
        ih_wr32(w, image_crc_field());
        port_nvm_write(IH_NVM_VERIFIED_CRC_OFFSET, w, sizeof w);
    }
    if (rt.img.max_region_bytes > IH_SRAM_OUT_BYTES) {
        return IH_ERR_SRAM;
    }
    rt.booted = 1;
    nvm = port_nvm();
    prog = read_progress();
    rt.committed = prog;
    if (ih_rd32(nvm + IH_NVM_MAGIC_OFFSET) == IH_NVM_MAGIC && ih_rd32(nvm + IH_NVM_TAG_OFFSET) == rt.img.plan_tag &&
        prog < rt.img.n_tasks) {
        rt.running = 1;
        rt.next = prog;
        if (rt.img.jit_at != 0) {
            jit_resume(prog);
        }
    }
    return IH_OK;
}

int ih_rt_load_begin(void)
{
    if (!rt.booted) {
        return IH_ERR_STATE;
    }
    rt.running = 0;
    rt.jit_restored = 0;
    write_progress(0xFFFFFFFFu); /* no inference while the input is half written */
    if (rt.img.jit_at != 0) {
        write_word(rt.img.jit_snap_off, 0); /* no snapshot of an earlier inference */
    }
    return IH_OK;
}

int ih_rt_load_chunk(uint32_t offset, const uint8_t *data, uint32_t bytes)
{
    ih_tensor in;
    if (!rt.booted) {
        return IH_ERR_STATE;
    }
    ih_tensor_get(&rt.img, rt.img.input_tensor, &in);
    if (offset > in.bytes || bytes > in.bytes - offset) {
        return IH_ERR_INPUT;
    }
    port_nvm_write(in.offset + offset, data, bytes);
    return IH_OK;
}

int ih_rt_load_end(void)
{
    uint8_t hdr[8];
    if (!rt.booted) {
        return IH_ERR_STATE;
    }
    ih_wr32(hdr, IH_NVM_MAGIC);
    ih_wr32(hdr + 4, rt.img.plan_tag);
    port_nvm_write(IH_NVM_MAGIC_OFFSET, hdr, sizeof hdr);
    write_progress(0);
    rt.running = 1;
    rt.next = 0;
    return IH_OK;
}

int ih_rt_load_input(const uint8_t *data, uint32_t bytes)
{
    int err;
    if (!rt.booted) {
        return IH_ERR_STATE;
    }
    if (bytes != ih_rt_input_bytes()) {
        return IH_ERR_INPUT;
    }
    if ((err = ih_rt_load_begin()) != IH_OK || (err = ih_rt_load_chunk(0, data, bytes)) != IH_OK) {
        return err;
    }
    return ih_rt_load_end();
}

uint32_t ih_rt_input_bytes(void)
{
    ih_tensor in;
    if (!rt.booted) {
        return 0;
    }
    ih_tensor_get(&rt.img, rt.img.input_tensor, &in);
    return in.bytes;
}

/* Conversion of a task's parameters from the layer record. */
static void conv_params(const ih_layer *l, const ih_tensor *in, const ih_tensor *out, ih_conv_params *p)
{
    const int32_t *q = l->params;
    p->in = in->shape;
    p->out = out->shape;
    p->kernel_h = q[0];
    p->kernel_w = q[1];
    p->stride_h = q[2];
    p->stride_w = q[3];
    p->dilation_h = q[4];
    p->dilation_w = q[5];
    p->pad_top = q[6];
    p->pad_left = q[7];
    p->depth_multiplier = q[8];
    p->input_offset = q[9];
    p->output_offset = q[10];
    p->act_min = q[11];
    p->act_max = q[12];
    p->quant.entries = ih_quant_entries(&rt.img, (uint32_t)q[13]);
    p->quant.count = out->shape.c;
}

static void fc_params(const ih_layer *l, ih_fc_params *p)
{
    const int32_t *q = l->params;
    p->batches = q[0];
    p->depth = q[1];
    p->out_c = q[2];
    p->input_offset = q[3];
    p->filter_offset = q[4];
    p->output_offset = q[5];
    p->act_min = q[6];
    p->act_max = q[7];
    p->quant.entries = ih_quant_entries(&rt.img, (uint32_t)q[8]);
    p->quant.count = q[9];
}

static void pool_params(const ih_layer *l, const ih_tensor *in, const ih_tensor *out, ih_pool_params *p)
{
    const int32_t *q = l->params;
    p->in = in->shape;
    p->out = out->shape;
    p->filter_h = q[0];
    p->filter_w = q[1];
    p->stride_h = q[2];
    p->stride_w = q[3];
    p->pad_top = q[4];
    p->pad_left = q[5];
    p->act_min = q[6];
    p->act_max = q[7];
}

static const uint8_t *const_or_null(uint16_t ref)
{
    ih_tensor t;
    if (ref == IH_NO_TENSOR) {
        return 0;
    }
    ih_tensor_get(&rt.img, ref, &t);
    return ih_const_data(&rt.img, &t);
}

/* Computes task t's output region (whole reductions) into buf. */
static void compute_region(const ih_layer *l, const ih_tensor *in0, const ih_tensor *in1, const ih_tensor *out,
                           const ih_region *r, uint8_t *buf)
{
    const uint8_t *nvm = port_nvm();
    const int8_t *x0 = (const int8_t *)(nvm + in0->offset);
    const int8_t *x1 = in1 ? (const int8_t *)(nvm + in1->offset) : 0;
    const int8_t *w = (const int8_t *)const_or_null(l->weights);
    const uint8_t *bias = const_or_null(l->bias);
    int8_t *o = (int8_t *)buf;
    const int32_t *q = l->params;
    switch (l->op) {
    case IH_OP_CONV_2D:
    case IH_OP_DEPTHWISE_CONV_2D: {
        ih_conv_params p;
        conv_params(l, in0, out, &p);
        if (l->op == IH_OP_CONV_2D) {
            ih_conv2d(&p, x0, w, bias, o, r);
        } else {
            ih_depthwise_conv2d(&p, x0, w, bias, o, r);
        }
        break;
    }
    case IH_OP_FULLY_CONNECTED: {
        ih_fc_params p;
        fc_params(l, &p);
        ih_fully_connected(&p, x0, w, bias, o, r);
        break;
    }
    case IH_OP_AVERAGE_POOL_2D:
    case IH_OP_MAX_POOL_2D: {
        ih_pool_params p;
        pool_params(l, in0, out, &p);
        if (l->op == IH_OP_MAX_POOL_2D) {
            ih_max_pool(&p, x0, o, r);
        } else {
            ih_average_pool(&p, x0, o, r);
        }
        break;
    }
    case IH_OP_ADD: {
        ih_add_params p;
        p.shape = out->shape;
        p.input1_offset = q[0];
        p.input2_offset = q[1];
        p.left_shift = q[2];
        p.input1_mult = q[3];
        p.input1_shift = q[4];
        p.input2_mult = q[5];
        p.input2_shift = q[6];
        p.output_mult = q[7];
        p.output_shift = q[8];
        p.output_offset = q[9];
        p.act_min = q[10];
        p.act_max = q[11];
        ih_add(&p, x0, x1, o, r);
        break;
    }
    case IH_OP_MUL: {
        ih_mul_params p;
        p.shape = out->shape;
        p.input1_offset = q[0];
        p.input2_offset = q[1];
        p.output_mult = q[2];
        p.output_shift = q[3];
        p.output_offset = q[4];
        p.act_min = q[5];
        p.act_max = q[6];
        ih_mul(&p, x0, x1, o, r);
        break;
    }
    case IH_OP_RESHAPE:
        ih_copy(&out->shape, (int32_t)dtype_bytes(out->dtype), nvm + in0->offset, buf, r);
        break;
    case IH_OP_SOFTMAX: {
        ih_softmax_params p;
        p.shape = out->shape;
        p.input_mult = q[0];
        p.input_left_shift = q[1];
        p.diff_min = q[2];
        ih_softmax(&p, x0, o, r);
        break;
    }
    case IH_OP_QUANTIZE:
        if (q[4] == 1) {
            ih_quantize_float(&out->shape, (uint32_t)q[5], q[6], nvm + in0->offset, o, r);
        } else {
            ih_requantize_params p;
            p.shape = out->shape;
            p.input_offset = q[0];
            p.multiplier = q[1];
            p.shift = q[2];
            p.output_offset = q[3];
            ih_requantize(&p, x0, o, r);
        }
        break;
    case IH_OP_DEQUANTIZE:
        ih_dequantize(&out->shape, (uint32_t)q[0], q[1], x0, buf, r);
        break;
    default:
        break; /* unreachable: the image was checked */
    }
}

/* One step of a split reduction over region r (the task's, or a chunk of
 * it): adds [lo, hi) to acc, r's sums in packed order. */
static void accumulate_step(const ih_layer *l, const ih_tensor *in0, const ih_tensor *out, const ih_task *t,
                            const ih_region *r, int32_t *acc)
{
    const int8_t *x0 = (const int8_t *)(port_nvm() + in0->offset);
    const int8_t *w = (const int8_t *)const_or_null(l->weights);
    switch (l->op) {
    case IH_OP_CONV_2D: {
        ih_conv_params p;
        conv_params(l, in0, out, &p);
        ih_conv2d_accumulate(&p, x0, w, r, t->lo, t->hi, acc);
        break;
    }
    case IH_OP_FULLY_CONNECTED: {
        ih_fc_params p;
        fc_params(l, &p);
        ih_fully_connected_accumulate(&p, x0, w, r, t->lo, t->hi, acc);
        break;
    }
    case IH_OP_AVERAGE_POOL_2D: {
        ih_pool_params p;
        pool_params(l, in0, out, &p);
        ih_average_pool_accumulate(&p, x0, r, t->lo, t->hi, acc);
        break;
    }
    default:
        break; /* unreachable: the image was checked */
    }
}

/* The last step of a split reduction: turns the task's sums in acc into
 * its int8 outputs in place. */
static void finish_step(const ih_layer *l, const ih_tensor *in0, const ih_tensor *out, const ih_task *t, int32_t *acc)
{
    const uint8_t *bias = const_or_null(l->bias);
    switch (l->op) {
    case IH_OP_CONV_2D: {
        ih_conv_params p;
        conv_params(l, in0, out, &p);
        ih_conv_finish(&p, bias, acc, (int8_t *)acc, &t->region);
        break;
    }
    case IH_OP_FULLY_CONNECTED: {
        ih_fc_params p;
        fc_params(l, &p);
        ih_fully_connected_finish(&p, bias, acc, (int8_t *)acc, &t->region);
        break;
    }
    case IH_OP_AVERAGE_POOL_2D: {
        ih_pool_params p;
        pool_params(l, in0, out, &p);
        ih_average_pool_finish(&p, acc, (int8_t *)acc, &t->region);
        break;
    }
    default:
        break; /* unreachable: the image was checked */
    }
}

/* Writes a packed output region from SRAM to its tensor in NVM, one
 * contiguous run at a time, in increasing address order. */
static void write_region(const ih_tensor *out, const ih_region *r, const uint8_t *buf)
{
    const ih_shape *s = &out->shape;
    uint32_t size = dtype_bytes(out->dtype);
    int32_t n, y, x;
    uint32_t done = 0;
    if (r->c0 == 0 && r->c1 == s->c && r->x0 == 0 && r->x1 == s->w) {
        uint32_t run = (uint32_t)((r->y1 - r->y0) * s->w * s->c) * size;
        for (n = r->n0; n < r->n1; n++) {
            uint32_t at = (uint32_t)((n * s->h + r->y0) * s->w * s->c) * size;
            port_nvm_write(out->offset + at, buf + done, run);
            done += run;
        }
        return;
    }
    for (n = r->n0; n < r->n1; n++) {
        for (y = r->y0; y < r->y1; y++) {
            for (x = r->x0; x < r->x1; x++) {
                uint32_t at = (uint32_t)(((n * s->h + y) * s->w + x) * s->c + r->c0) * size;
                uint32_t run = (uint32_t)(r->c1 - r->c0) * size;
                port_nvm_write(out->offset + at, buf + done, run);
                done += run;
            }
        }
    }
}

/* The energy above brown-out at mv millivolts, nJ, rounded down:
 * C * (V^2 - Voff^2) / 2 with C in nF and V in mV (the image's rule section). */
static uint64_t energy_left(uint32_t mv)
{
    uint64_t v2, off2;
    if (mv <= rt.img.rule_voff_mv) {
        return 0;
    }
    v2 = (uint64_t)mv * mv;
    off2 = (uint64_t)rt.img.rule_voff_mv * rt.img.rule_voff_mv;
    return (uint64_t)rt.img.rule_cap_nf * (v2 - off2) / 2000000u;
}

/* The run-time rule before task t, deciding as boards/sim's Board.rule does
 * with the numbers the harness put in the image (plan.RuleNeed, RuleLimit):
 * when the energy left does not cover the task's need (the task, the
 * reading, and a commit), commit the work not yet committed and read again,
 * or, with nothing to commit, sleep until the capacitor is charged and then
 * run the task without another reading. A task that needs more than the
 * limit (95% of a full charge) runs anyway (sleeping would not help), as
 * does every task when the port cannot measure (0 mV). */
static void runtime_rule(const ih_task *t)
{
    uint32_t need = ih_rule_need(&rt.img, t->index);
    for (;;) {
        uint16_t mv = port_supply_mv(); /* read every time, as the plan prices it */
        if (mv == 0 || energy_left(mv) >= need || need > rt.img.rule_limit_nj) {
            return;
        }
        if (rt.committed < t->index) {
            write_progress(t->index); /* everything before t is done */
            stats.early_commits++;
            continue;
        }
        port_sleep_until_charged();
        stats.sleeps++;
        return;
    }
}

/* Just-in-time checkpoints (harness/plan JIT; Hibernus, QuickRecall): the
 * bytes a snapshot of task t keeps after k of its chunks, its packed
 * outputs (int32 sums for a split reduction's step) so far. */
static uint32_t partial_bytes(const ih_task *t, const ih_tensor *out, uint32_t k)
{
    uint32_t px = ih_jit_chunk_pixels(&rt.img, t->layer), before;
    uint32_t size = ih_task_split(t) ? 4u : dtype_bytes(out->dtype);
    ih_region s;
    if (k == 0) {
        return 0;
    }
    if (k >= ih_chunks(&t->region, px)) {
        return (uint32_t)ih_region_elems(&t->region) * size;
    }
    ih_chunk(&t->region, px, k, &s, &before);
    return before * size;
}

/* The sums of a split step as little-endian bytes in place, or back. */
static void acc_to_le(int32_t *acc, uint32_t n)
{
    uint32_t i;
    for (i = 0; i < n; i++) {
        uint32_t v = (uint32_t)acc[i];
        ih_wr32((uint8_t *)(acc + i), v);
    }
}

static void acc_from_le(int32_t *acc, uint32_t n)
{
    uint32_t i;
    for (i = 0; i < n; i++) {
        acc[i] = ih_rdi32((const uint8_t *)(acc + i));
    }
}

/* A snapshot of task t after k chunks: the valid word 0, the partial
 * region, the task and k, the valid word 1 (each write completes before
 * the next, so a cut one is never valid). */
static void jit_snapshot(const ih_task *t, const ih_tensor *out, uint32_t k)
{
    uint32_t at = rt.img.jit_snap_off, bytes = partial_bytes(t, out, k);
    uint8_t hdr[8];
    write_word(at, 0);
    if (bytes > 0) {
        if (ih_task_split(t)) {
            acc_to_le(sram_buf, bytes / 4);
        }
        port_nvm_write(at + IH_SNAPSHOT_HEADER_BYTES, sram_buf, bytes);
        if (ih_task_split(t)) {
            acc_from_le(sram_buf, bytes / 4);
        }
    }
    ih_wr32(hdr, t->index);
    ih_wr32(hdr + 4, k);
    port_nvm_write(at + 4, hdr, sizeof hdr);
    write_word(at, 1);
    stats.snapshots++;
}

/* At boot: a valid snapshot of a task at or after the progress word is
 * resumed: its partial region back into SRAM, the task next. */
static void jit_resume(uint32_t prog)
{
    const uint8_t *a = port_nvm() + rt.img.jit_snap_off;
    uint32_t task = ih_rd32(a + 4), k = ih_rd32(a + 8), bytes, i;
    ih_task t;
    ih_layer l;
    ih_tensor out;
    if (read_word(rt.img.jit_snap_off) != 1 || task < prog || task >= rt.img.n_tasks || ih_task_get(&rt.img, task, &t) != IH_OK ||
        k >= ih_chunks(&t.region, ih_jit_chunk_pixels(&rt.img, t.layer))) {
        return;
    }
    ih_layer_get(&rt.img, t.layer, &l);
    ih_tensor_get(&rt.img, l.output, &out);
    bytes = partial_bytes(&t, &out, k);
    for (i = 0; i < bytes; i++) {
        ((uint8_t *)sram_buf)[i] = a[IH_SNAPSHOT_HEADER_BYTES + i];
    }
    if (ih_task_split(&t)) {
        acc_from_le(sram_buf, bytes / 4);
    }
    rt.next = task;
    rt.jit_k = k;
    rt.jit_restored = 1;
    if (k > 0) {
        stats.restores++;
    }
}

/* Task t's arithmetic in chunks from chunk k on (the ones before it were
 * restored), reading the supply before each: below the threshold, a
 * snapshot, then a sleep until the turn-on voltage, then the chunk. */
static void jit_compute(const ih_layer *l, const ih_tensor *in0, const ih_tensor *in1, const ih_tensor *out,
                        const ih_task *t, uint32_t k)
{
    uint32_t px = ih_jit_chunk_pixels(&rt.img, t->layer), n = ih_chunks(&t->region, px);
    uint32_t elems = (uint32_t)ih_region_elems(&t->region), size = dtype_bytes(out->dtype), before, i, j;
    int split = ih_task_split(t);
    ih_region s;
    if (split) {
        /* The sums after the restored ones start from the step before (or 0). */
        const uint8_t *prev = port_nvm() + t->prev_slot_off;
        i = k >= n ? elems : 0;
        if (k > 0 && k < n) {
            ih_chunk(&t->region, px, k, &s, &i);
        }
        for (; i < elems; i++) {
            sram_buf[i] = t->step == 0 ? 0 : ih_rdi32(prev + 4 * i);
        }
    }
    for (j = k; j < n; j++) {
        uint16_t mv;
        ih_chunk(&t->region, px, j, &s, &before);
        mv = port_supply_mv();
        if (mv != 0 && mv < rt.img.jit_vh_mv) {
            jit_snapshot(t, out, j);
            port_sleep_until_charged();
            stats.sleeps++;
        }
        if (split) {
            accumulate_step(l, in0, out, t, &s, sram_buf + before);
        } else {
            compute_region(l, in0, in1, out, &s, (uint8_t *)sram_buf + before * size);
        }
    }
    if (split && ih_task_last(t)) {
        finish_step(l, in0, out, t, sram_buf);
    } else if (split) {
        acc_to_le(sram_buf, elems);
    }
}

/* An empty function the emulated board's debugger stops at: after the rule,
 * before the task's work. noinline and the barrier keep the call and the
 * symbol in every build. */
IH_NOINLINE void ih_task_begin(uint32_t task)
{
    (void)task;
    IH_BARRIER();
}

int ih_rt_step(void)
{
    ih_task t;
    ih_layer l;
    ih_tensor in0, in1, out;
    uint8_t *buf = (uint8_t *)sram_buf;
    int32_t *acc = sram_buf;
    uint32_t elems, i, k = 0;
    int err;
    if (!rt.booted) {
        return IH_ERR_STATE;
    }
    if (!rt.running) {
        return read_progress() == rt.img.n_tasks ? IH_RT_DONE : IH_RT_IDLE;
    }
    if ((err = ih_task_get(&rt.img, rt.next, &t)) != IH_OK) {
        return err;
    }
    ih_layer_get(&rt.img, t.layer, &l);
    ih_tensor_get(&rt.img, l.input[0], &in0);
    ih_tensor_get(&rt.img, l.output, &out);
    if (l.n_inputs > 1) {
        ih_tensor_get(&rt.img, l.input[1], &in1);
    }
    if (rt.img.rule_at != 0) {
        runtime_rule(&t);
    }
    if (rt.jit_restored) {
        k = rt.jit_k; /* the boot restored the task's first k chunks */
        rt.jit_restored = 0;
    }
    ih_task_begin(t.index);
    stats.tasks_run++;
    elems = (uint32_t)ih_region_elems(&t.region);
    if (rt.img.jit_at != 0) {
        jit_compute(&l, &in0, l.n_inputs > 1 ? &in1 : 0, &out, &t, k);
    } else if (ih_task_split(&t)) {
        const uint8_t *prev = port_nvm() + t.prev_slot_off;
        for (i = 0; i < elems; i++) {
            acc[i] = t.step == 0 ? 0 : ih_rdi32(prev + 4 * i);
        }
        accumulate_step(&l, &in0, &out, &t, &t.region, acc);
        if (ih_task_last(&t)) {
            finish_step(&l, &in0, &out, &t, acc);
        } else {
            for (i = 0; i < elems; i++) {
                uint32_t v = (uint32_t)acc[i];
                ih_wr32(buf + 4 * i, v); /* little-endian in place */
            }
        }
    } else {
        compute_region(&l, &in0, l.n_inputs > 1 ? &in1 : 0, &out, &t.region, buf);
    }
#ifdef IH_BROKEN_COMMIT_BEFORE_WRITE
    if (t.commit) {
        write_progress(t.index + 1);
        stats.commits++;
    }
#endif
    if (ih_task_split(&t) && !ih_task_last(&t)) {
        port_nvm_write(t.slot_off, buf, 4 * elems);
    } else {
        write_region(&out, &t.region, buf);
    }
#ifndef IH_BROKEN_COMMIT_BEFORE_WRITE
    if (t.commit) {
        write_progress(t.index + 1); /* after all of the task's writes */
        stats.commits++;
    }
#endif
    rt.next = t.index + 1;
    if (rt.next >= rt.img.n_tasks) {
        rt.running = 0;
    }
    return IH_RT_RAN;
}

int ih_rt_run(void)
{
    int r;
    do {
        r = ih_rt_step();
    } while (r == IH_RT_RAN);
    return r;
}

uint32_t ih_rt_next(void) { return rt.next; }

uint32_t ih_rt_tasks(void) { return rt.booted ? rt.img.n_tasks : 0; }

uint32_t ih_rt_progress(void) { return rt.booted ? read_progress() : 0; }

const ih_image *ih_rt_image(void) { return rt.booted ? &rt.img : 0; }

const uint8_t *ih_rt_output(uint32_t *bytes)
{
    ih_tensor out;
    if (!rt.booted) {
        *bytes = 0;
        return 0;
    }
    ih_tensor_get(&rt.img, rt.img.output_tensor, &out);
    *bytes = out.bytes;
    return port_nvm() + out.offset;
}

uint16_t ih_rt_turn_on_mv(void)
{
    if (!rt.booted) {
        return 0;
    }
    return rt.img.rule_at != 0 ? rt.img.rule_von_mv : rt.img.jit_at != 0 ? rt.img.jit_von_mv : 0;
}

const ih_rt_stats *ih_rt_get_stats(void) { return &stats; }

void ih_rt_reset_stats(void)
{
    stats.boots = stats.tasks_run = stats.commits = stats.early_commits = stats.sleeps = stats.snapshots = stats.restores = 0;
}

void ih_rt_poison(void)
{
    uint8_t *p = (uint8_t *)sram_buf;
    uint32_t i;
    for (i = 0; i < sizeof sram_buf; i++) {
        p[i] = 0xA5;
    }
    p = (uint8_t *)&rt;
    for (i = 0; i < sizeof rt; i++) {
        p[i] = 0xA5;
    }
    rt.booted = 0;
}
