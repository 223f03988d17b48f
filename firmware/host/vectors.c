/*
 * vectors - runs bit-exact int8 operator vectors (../shared/data/vectors,
 * format in its README.md) through the C kernels.
 *
 *   vectors DIR
 *
 * Every *.json file under DIR (recursively, sorted by path) is one case: the
 * kernel computes the whole output and every value must equal output_ref.
 * Prints one line per case and "N passed, M failed"; exits 0 only if every
 * case passes (and there is at least one), 1 otherwise, 2 on a usage error.
 */
#define _POSIX_C_SOURCE 200809L

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "json.h"
#include "kernels.h"

#define MAX_FILE_BYTES (64L << 20)
#define MAX_ELEMS (1L << 26)

typedef struct {
    char **v;
    size_t n, cap;
} paths;

static int add_path(paths *ps, const char *p)
{
    if (ps->n == ps->cap) {
        size_t cap = ps->cap ? 2 * ps->cap : 64;
        char **v = realloc(ps->v, cap * sizeof *v);
        if (!v) {
            return -1;
        }
        ps->v = v;
        ps->cap = cap;
    }
    ps->v[ps->n] = malloc(strlen(p) + 1);
    if (!ps->v[ps->n]) {
        return -1;
    }
    strcpy(ps->v[ps->n++], p);
    return 0;
}

static int find(paths *ps, const char *dir, int depth)
{
    DIR *d;
    struct dirent *e;
    if (depth > 16 || !(d = opendir(dir))) {
        return -1;
    }
    while ((e = readdir(d)) != NULL) {
        struct stat st;
        char *p;
        size_t len;
        if (e->d_name[0] == '.') {
            continue;
        }
        p = malloc(strlen(dir) + strlen(e->d_name) + 2);
        if (!p) {
            closedir(d);
            return -1;
        }
        sprintf(p, "%s/%s", dir, e->d_name);
        if (stat(p, &st) == 0) {
            len = strlen(p);
            if (S_ISDIR(st.st_mode)) {
                find(ps, p, depth + 1);
            } else if (S_ISREG(st.st_mode) && len > 5 && strcmp(p + len - 5, ".json") == 0) {
                add_path(ps, p);
            }
        }
        free(p);
    }
    closedir(d);
    return 0;
}

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* One case being run: its JSON and the first error met. */
typedef struct {
    const char *path;
    const json *params, *tensors;
    char err[512];
} vcase;

static void set_err(vcase *c, const char *msg, const char *name)
{
    if (!c->err[0]) {
        snprintf(c->err, sizeof c->err, "%s: %s%s%s", c->path, name ? name : "", name ? ": " : "", msg);
    }
}

/* An integer parameter in [lo, hi]. */
static int32_t param(vcase *c, const char *name, int64_t lo, int64_t hi)
{
    const json *v = json_get(c->params, name);
    if (!v || v->kind != J_INT) {
        set_err(c, "missing or not an integer", name);
        return 0;
    }
    if (v->i < lo || v->i > hi) {
        set_err(c, "out of range", name);
        return 0;
    }
    return (int32_t)v->i;
}

#define DIM(c, name) param(c, name, 1, 65536)
#define I32(c, name) param(c, name, INT32_MIN, INT32_MAX)
#define ACT(c, name) param(c, name, -128, 127)

static int has_tensor(vcase *c, const char *name) { return json_get(c->tensors, name) != NULL; }

/* The data of tensor name as int64 values, checked for dtype and count
 * (count < 0: any). Returns a malloc'd array or NULL. */
static int64_t *tensor(vcase *c, const char *name, const char *dtype, long count, long *n_out)
{
    const json *t = json_get(c->tensors, name), *dt, *data;
    int64_t lo = dtype[3] == '8' ? -128 : INT32_MIN, hi = dtype[3] == '8' ? 127 : INT32_MAX;
    int64_t *vals;
    size_t k;
    if (c->err[0]) {
        return NULL;
    }
    if (!t || t->kind != J_OBJECT) {
        set_err(c, "missing", name);
        return NULL;
    }
    dt = json_get(t, "dtype");
    data = json_get(t, "data");
    if (!dt || dt->kind != J_STRING || strcmp(dt->s, dtype) != 0) {
        set_err(c, dtype[3] == '8' ? "dtype is not int8" : "dtype is not int32", name);
        return NULL;
    }
    if (!data || data->kind != J_ARRAY || (count >= 0 && (long)data->n != count) || (long)data->n > MAX_ELEMS) {
        set_err(c, "data missing or of the wrong length", name);
        return NULL;
    }
    vals = malloc((data->n ? data->n : 1) * sizeof *vals);
    if (!vals) {
        set_err(c, "out of memory", name);
        return NULL;
    }
    for (k = 0; k < data->n; k++) {
        const json *e = &data->items[k];
        if (e->kind != J_INT || e->i < lo || e->i > hi) {
            set_err(c, "value not an integer of its dtype", name);
            free(vals);
            return NULL;
        }
        vals[k] = e->i;
    }
    if (n_out) {
        *n_out = (long)data->n;
    }
    return vals;
}

static int8_t *to_i8(const int64_t *v, long n)
{
    int8_t *o = malloc(n ? (size_t)n : 1);
    long k;
    if (o && v) {
        for (k = 0; k < n; k++) {
            o[k] = (int8_t)v[k];
        }
    }
    return o;
}

/* int32 values as little-endian bytes (biases). */
static uint8_t *to_le32(const int64_t *v, long n)
{
    uint8_t *o = malloc(n ? 4 * (size_t)n : 1);
    long k;
    if (o && v) {
        for (k = 0; k < n; k++) {
            uint32_t u = (uint32_t)v[k];
            o[4 * k] = (uint8_t)u;
            o[4 * k + 1] = (uint8_t)(u >> 8);
            o[4 * k + 2] = (uint8_t)(u >> 16);
            o[4 * k + 3] = (uint8_t)(u >> 24);
        }
    }
    return o;
}

/* (multiplier, shift) pairs as the image stores them. */
static uint8_t *quant_entries(vcase *c, const int64_t *mult, const int64_t *shift, long n)
{
    uint8_t *o = malloc(n ? 8 * (size_t)n : 1);
    long k;
    if (!o || !mult || !shift) {
        free(o);
        return NULL;
    }
    for (k = 0; k < n; k++) {
        uint32_t m = (uint32_t)mult[k], s = (uint32_t)shift[k];
        if (shift[k] < -31 || shift[k] > 30) {
            set_err(c, "a shift is outside [-31, 30]", "output_shift");
        }
        o[8 * k] = (uint8_t)m;
        o[8 * k + 1] = (uint8_t)(m >> 8);
        o[8 * k + 2] = (uint8_t)(m >> 16);
        o[8 * k + 3] = (uint8_t)(m >> 24);
        o[8 * k + 4] = (uint8_t)s;
        o[8 * k + 5] = (uint8_t)(s >> 8);
        o[8 * k + 6] = (uint8_t)(s >> 16);
        o[8 * k + 7] = (uint8_t)(s >> 24);
    }
    return o;
}

static long elems(const ih_shape *s) { return (long)s->n * s->h * s->w * s->c; }

/* Window coordinates must stay far inside int32. */
static void window_ok(vcase *c, int32_t out, int32_t stride, int32_t k, int32_t dil, int32_t pad)
{
    long long span = (long long)out * stride + (long long)k * dil;
    if (span > (1LL << 30) || pad < -65536 || pad > 65536) {
        set_err(c, "window parameters out of range", "params");
    }
}

static int8_t *run_conv(vcase *c, int depthwise, long *n_out)
{
    ih_conv_params p;
    int64_t *in = NULL, *w = NULL, *b = NULL, *m = NULL, *s = NULL;
    int8_t *x = NULL, *wt = NULL, *out = NULL;
    uint8_t *bias = NULL, *q = NULL;
    long w_elems;
    ih_region r;
    memset(&p, 0, sizeof p);
    p.in.n = p.out.n = DIM(c, "input_batches");
    p.in.h = DIM(c, "input_h");
    p.in.w = DIM(c, "input_w");
    p.in.c = DIM(c, "in_ch");
    p.out.c = DIM(c, "out_ch");
    p.out.h = DIM(c, "output_h");
    p.out.w = DIM(c, "output_w");
    p.kernel_h = DIM(c, "filter_y");
    p.kernel_w = DIM(c, "filter_x");
    p.stride_h = DIM(c, "stride_y");
    p.stride_w = DIM(c, "stride_x");
    p.dilation_h = DIM(c, "dilation_y");
    p.dilation_w = DIM(c, "dilation_x");
    p.pad_top = I32(c, "pad_y");
    p.pad_left = I32(c, "pad_x");
    p.depth_multiplier = depthwise ? DIM(c, "ch_mult") : 1;
    p.input_offset = I32(c, "input_offset");
    p.output_offset = I32(c, "output_offset");
    p.act_min = ACT(c, "out_activation_min");
    p.act_max = ACT(c, "out_activation_max");
    if (c->err[0]) {
        return NULL;
    }
    window_ok(c, p.out.h, p.stride_h, p.kernel_h, p.dilation_h, p.pad_top);
    window_ok(c, p.out.w, p.stride_w, p.kernel_w, p.dilation_w, p.pad_left);
    if (depthwise && (long)p.out.c != (long)p.in.c * p.depth_multiplier) {
        set_err(c, "out_ch is not in_ch x ch_mult", "params");
    }
    w_elems = depthwise ? (long)p.kernel_h * p.kernel_w * p.out.c : (long)p.out.c * p.kernel_h * p.kernel_w * p.in.c;
    if (elems(&p.in) > MAX_ELEMS || elems(&p.out) > MAX_ELEMS || w_elems > MAX_ELEMS) {
        set_err(c, "tensors too large", "params");
    }
    if (c->err[0]) {
        return NULL;
    }
    in = tensor(c, "input", "int8", elems(&p.in), NULL);
    w = tensor(c, "weights", "int8", w_elems, NULL);
    b = tensor(c, "biases", "int32", p.out.c, NULL);
    m = tensor(c, "output_mult", "int32", p.out.c, NULL);
    s = tensor(c, "output_shift", "int32", p.out.c, NULL);
    if (!c->err[0]) {
        x = to_i8(in, elems(&p.in));
        wt = to_i8(w, w_elems);
        bias = to_le32(b, p.out.c);
        q = quant_entries(c, m, s, p.out.c);
        out = malloc((size_t)elems(&p.out));
        if (!x || !wt || !bias || !q || !out) {
            set_err(c, "out of memory", NULL);
        }
    }
    if (!c->err[0]) {
        p.quant.entries = q;
        p.quant.count = p.out.c;
        r = ih_shape_full(&p.out);
        if (depthwise) {
            ih_depthwise_conv2d(&p, x, wt, bias, out, &r);
        } else {
            ih_conv2d(&p, x, wt, bias, out, &r);
        }
        *n_out = elems(&p.out);
    } else {
        free(out);
        out = NULL;
    }
    free(in), free(w), free(b), free(m), free(s), free(x), free(wt), free(bias), free(q);
    return out;
}

static int8_t *run_fc(vcase *c, long *n_out)
{
    ih_fc_params p;
    int64_t *in = NULL, *w = NULL, *b = NULL, *m = NULL, *s = NULL, one_m, one_s;
    int8_t *x = NULL, *wt = NULL, *out = NULL;
    uint8_t *bias = NULL, *q = NULL;
    long nq = 1;
    ih_region r;
    memset(&p, 0, sizeof p);
    p.batches = DIM(c, "input_batches");
    p.depth = DIM(c, "accumulation_depth");
    p.out_c = DIM(c, "out_ch");
    p.input_offset = I32(c, "input_offset");
    p.filter_offset = I32(c, "filter_offset");
    p.output_offset = I32(c, "output_offset");
    p.act_min = ACT(c, "out_activation_min");
    p.act_max = ACT(c, "out_activation_max");
    if (!c->err[0] && ((long)p.batches * p.depth > MAX_ELEMS || (long)p.out_c * p.depth > MAX_ELEMS)) {
        set_err(c, "tensors too large", "params");
    }
    if (c->err[0]) {
        return NULL;
    }
    in = tensor(c, "input", "int8", (long)p.batches * p.depth, NULL);
    w = tensor(c, "weights", "int8", (long)p.out_c * p.depth, NULL);
    b = tensor(c, "biases", "int32", p.out_c, NULL);
    if (has_tensor(c, "output_mult")) {
        nq = p.out_c;
        m = tensor(c, "output_mult", "int32", nq, NULL);
        s = tensor(c, "output_shift", "int32", nq, NULL);
        if (!c->err[0]) {
            q = quant_entries(c, m, s, nq);
        }
    } else {
        one_m = I32(c, "output_multiplier");
        one_s = I32(c, "output_shift");
        if (!c->err[0]) {
            q = quant_entries(c, &one_m, &one_s, 1);
        }
    }
    if (!c->err[0]) {
        x = to_i8(in, (long)p.batches * p.depth);
        wt = to_i8(w, (long)p.out_c * p.depth);
        bias = to_le32(b, p.out_c);
        out = malloc((size_t)p.batches * (size_t)p.out_c);
        if (!x || !wt || !bias || !q || !out) {
            set_err(c, "out of memory", NULL);
        }
    }
    if (!c->err[0]) {
        p.quant.entries = q;
        p.quant.count = (int32_t)nq;
        r.n0 = 0, r.n1 = p.batches, r.y0 = 0, r.y1 = 1, r.x0 = 0, r.x1 = 1, r.c0 = 0, r.c1 = p.out_c;
        ih_fully_connected(&p, x, wt, bias, out, &r);
        *n_out = (long)p.batches * p.out_c;
    } else {
        free(out);
        out = NULL;
    }
    free(in), free(w), free(b), free(m), free(s), free(x), free(wt), free(bias), free(q);
    return out;
}

static int8_t *run_pool(vcase *c, int max, long *n_out)
{
    ih_pool_params p;
    int64_t *in = NULL;
    int8_t *x = NULL, *out = NULL;
    ih_region r;
    memset(&p, 0, sizeof p);
    p.in.n = p.out.n = DIM(c, "batch_size");
    p.in.h = DIM(c, "input_h");
    p.in.w = DIM(c, "input_w");
    p.in.c = p.out.c = DIM(c, "input_c");
    p.out.h = DIM(c, "output_h");
    p.out.w = DIM(c, "output_w");
    p.filter_h = DIM(c, "filter_h");
    p.filter_w = DIM(c, "filter_w");
    p.stride_h = DIM(c, "stride_h");
    p.stride_w = DIM(c, "stride_w");
    p.pad_top = I32(c, "padding_h");
    p.pad_left = I32(c, "padding_w");
    p.act_min = ACT(c, "activation_min");
    p.act_max = ACT(c, "activation_max");
    if (c->err[0]) {
        return NULL;
    }
    window_ok(c, p.out.h, p.stride_h, p.filter_h, 1, p.pad_top);
    window_ok(c, p.out.w, p.stride_w, p.filter_w, 1, p.pad_left);
    if (elems(&p.in) > MAX_ELEMS || elems(&p.out) > MAX_ELEMS) {
        set_err(c, "tensors too large", "params");
    }
    in = tensor(c, "input", "int8", elems(&p.in), NULL);
    if (!c->err[0]) {
        x = to_i8(in, elems(&p.in));
        out = malloc((size_t)elems(&p.out));
        if (!x || !out) {
            set_err(c, "out of memory", NULL);
        }
    }
    if (!c->err[0]) {
        r = ih_shape_full(&p.out);
        if (max) {
            ih_max_pool(&p, x, out, &r);
        } else {
            ih_average_pool(&p, x, out, &r);
        }
        *n_out = elems(&p.out);
    } else {
        free(out);
        out = NULL;
    }
    free(in), free(x);
    return out;
}

static int8_t *run_softmax(vcase *c, long *n_out)
{
    ih_softmax_params p;
    int64_t *in = NULL;
    int8_t *x = NULL, *out = NULL;
    ih_region r;
    memset(&p, 0, sizeof p);
    p.shape.n = DIM(c, "num_rows");
    p.shape.h = p.shape.w = 1;
    p.shape.c = DIM(c, "row_size");
    p.input_mult = I32(c, "input_mult");
    p.input_left_shift = param(c, "input_left_shift", 0, 31);
    p.diff_min = I32(c, "diff_min");
    if (!c->err[0] && elems(&p.shape) > MAX_ELEMS) {
        set_err(c, "tensors too large", "params");
    }
    in = tensor(c, "input", "int8", elems(&p.shape), NULL);
    if (!c->err[0]) {
        x = to_i8(in, elems(&p.shape));
        out = malloc((size_t)elems(&p.shape));
        if (!x || !out) {
            set_err(c, "out of memory", NULL);
        }
    }
    if (!c->err[0]) {
        r = ih_shape_full(&p.shape);
        ih_softmax(&p, x, out, &r);
        *n_out = elems(&p.shape);
    } else {
        free(out);
        out = NULL;
    }
    free(in), free(x);
    return out;
}

static int8_t *run_elementwise(vcase *c, int mul, long *n_out)
{
    int64_t *a = NULL, *b = NULL;
    int8_t *x1 = NULL, *x2 = NULL, *out = NULL;
    long n = 0;
    ih_shape s;
    ih_region r;
    ih_add_params ap;
    ih_mul_params mp;
    memset(&ap, 0, sizeof ap);
    memset(&mp, 0, sizeof mp);
    a = tensor(c, "input1", "int8", -1, &n);
    b = tensor(c, "input2", "int8", n, NULL);
    s.n = s.h = s.w = 1;
    s.c = (int32_t)n;
    if (mul) {
        mp.shape = s;
        mp.input1_offset = I32(c, "input1_offset");
        mp.input2_offset = I32(c, "input2_offset");
        mp.output_mult = I32(c, "output_mult");
        mp.output_shift = param(c, "output_shift", -31, 30);
        mp.output_offset = I32(c, "output_offset");
        mp.act_min = ACT(c, "out_activation_min");
        mp.act_max = ACT(c, "out_activation_max");
    } else {
        ap.shape = s;
        ap.input1_offset = I32(c, "input1_offset");
        ap.input2_offset = I32(c, "input2_offset");
        ap.left_shift = param(c, "left_shift", 0, 24);
        ap.input1_mult = I32(c, "input1_mult");
        ap.input1_shift = param(c, "input1_shift", -31, 30);
        ap.input2_mult = I32(c, "input2_mult");
        ap.input2_shift = param(c, "input2_shift", -31, 30);
        ap.output_mult = I32(c, "output_mult");
        ap.output_shift = param(c, "output_shift", -31, 30);
        ap.output_offset = I32(c, "output_offset");
        ap.act_min = ACT(c, "out_activation_min");
        ap.act_max = ACT(c, "out_activation_max");
    }
    if (!c->err[0]) {
        x1 = to_i8(a, n);
        x2 = to_i8(b, n);
        out = malloc(n ? (size_t)n : 1);
        if (!x1 || !x2 || !out) {
            set_err(c, "out of memory", NULL);
        }
    }
    if (!c->err[0]) {
        r = ih_shape_full(&s);
        if (mul) {
            ih_mul(&mp, x1, x2, out, &r);
        } else {
            ih_add(&ap, x1, x2, out, &r);
        }
        *n_out = n;
    } else {
        free(out);
        out = NULL;
    }
    free(a), free(b), free(x1), free(x2);
    return out;
}

static char *read_text(const char *path, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;
    if (!f) {
        snprintf(err, errlen, "%s: cannot open", path);
        return NULL;
    }
    if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || n > MAX_FILE_BYTES || fseek(f, 0, SEEK_SET) != 0) {
        snprintf(err, errlen, "%s: unreadable or larger than %ld bytes", path, MAX_FILE_BYTES);
        fclose(f);
        return NULL;
    }
    buf = malloc((size_t)n + 1);
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        snprintf(err, errlen, "%s: read error", path);
        free(buf);
        fclose(f);
        return NULL;
    }
    fclose(f);
    buf[n] = 0;
    *len = (size_t)n;
    return buf;
}

/* Runs one case; returns 1 if it passed. */
static int run_case(const char *path)
{
    vcase c;
    char jerr[256];
    size_t len = 0;
    char *text;
    json *doc = NULL;
    const json *op, *name;
    const char *opname = "?", *casename = "?";
    int8_t *got = NULL;
    int64_t *want = NULL;
    long n = 0, k, mismatches = 0, first = -1;
    int passed = 0;
    memset(&c, 0, sizeof c);
    c.path = path;
    text = read_text(path, &len, c.err, sizeof c.err);
    if (text) {
        doc = json_parse(text, len, jerr, sizeof jerr);
        if (!doc) {
            set_err(&c, jerr, NULL);
        }
    }
    if (doc) {
        op = json_get(doc, "op");
        name = json_get(doc, "case");
        c.params = json_get(doc, "params");
        c.tensors = json_get(doc, "tensors");
        if (!op || op->kind != J_STRING) {
            set_err(&c, "field \"op\" is missing", NULL);
        } else {
            opname = op->s;
        }
        if (name && name->kind == J_STRING) {
            casename = name->s;
        }
        if (!c.tensors || c.tensors->kind != J_OBJECT) {
            set_err(&c, "field \"tensors\" is missing", NULL);
        }
        if (!c.params || c.params->kind != J_OBJECT) {
            set_err(&c, "field \"params\" is missing", NULL);
        }
    }
    if (!c.err[0]) {
        if (strcmp(opname, "conv2d_s8") == 0) {
            got = run_conv(&c, 0, &n);
        } else if (strcmp(opname, "depthwise_conv2d_s8") == 0) {
            got = run_conv(&c, 1, &n);
        } else if (strcmp(opname, "fully_connected_s8") == 0) {
            got = run_fc(&c, &n);
        } else if (strcmp(opname, "avgpool_s8") == 0) {
            got = run_pool(&c, 0, &n);
        } else if (strcmp(opname, "maxpool_s8") == 0) {
            got = run_pool(&c, 1, &n);
        } else if (strcmp(opname, "softmax_s8") == 0) {
            got = run_softmax(&c, &n);
        } else if (strcmp(opname, "add_s8") == 0) {
            got = run_elementwise(&c, 0, &n);
        } else if (strcmp(opname, "mul_s8") == 0) {
            got = run_elementwise(&c, 1, &n);
        } else {
            set_err(&c, "operator is not supported", opname);
        }
    }
    if (got && !c.err[0]) {
        want = tensor(&c, "output_ref", "int8", n, NULL);
    }
    if (got && want) {
        for (k = 0; k < n; k++) {
            if (got[k] != want[k]) {
                if (first < 0) {
                    first = k;
                }
                mismatches++;
            }
        }
        if (mismatches == 0) {
            printf("PASS %s/%s\n", opname, casename);
            passed = 1;
        } else {
            printf("FAIL %s/%s: %ld of %ld values differ, first output[%ld] = %d, want %d\n", opname, casename,
                   mismatches, n, first, got[first], (int)want[first]);
        }
    } else {
        printf("FAIL %s/%s: %s\n", opname, casename, c.err[0] ? c.err : "could not run");
    }
    free(got);
    free(want);
    if (doc) {
        json_free(doc);
        free(doc);
    }
    free(text);
    return passed;
}

int main(int argc, char **argv)
{
    paths ps = {NULL, 0, 0};
    size_t k;
    long passed = 0, failed = 0;
    if (argc != 2) {
        fprintf(stderr, "usage: vectors DIR\n");
        return 2;
    }
    if (find(&ps, argv[1], 0) != 0) {
        fprintf(stderr, "vectors: %s: cannot read the directory\n", argv[1]);
        return 2;
    }
    if (ps.n == 0) {
        fprintf(stderr, "vectors: %s: no *.json vector files\n", argv[1]);
        return 1;
    }
    qsort(ps.v, ps.n, sizeof ps.v[0], cmp_str);
    for (k = 0; k < ps.n; k++) {
        if (run_case(ps.v[k])) {
            passed++;
        } else {
            failed++;
        }
        free(ps.v[k]);
    }
    free(ps.v);
    printf("%ld passed, %ld failed\n", passed, failed);
    return failed == 0 ? 0 : 1;
}
