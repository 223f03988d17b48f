/*
 * tasks.c - see tasks.h.
 */
#include "tasks.h"

static int32_t imin(int32_t a, int32_t b) { return a < b ? a : b; }

int ih_task_get(const ih_image *img, uint32_t i, ih_task *t)
{
    ih_schedule s;
    ih_layer l;
    ih_tensor in0, out;
    uint16_t li;
    uint32_t rest, n_c, n_x, n_y, k, ci, xi, yi;
    int32_t dim;
    if (i >= img->n_tasks) {
        return IH_ERR_TASKS;
    }
    for (li = 0; li < img->n_layers; li++) {
        ih_schedule_get(img, li, &s);
        if (i - s.first_task < s.tasks) { /* first_task <= i, unsigned */
            break;
        }
    }
    if (li == img->n_layers) {
        return IH_ERR_TASKS; /* unreachable for a checked image */
    }
    ih_layer_get(img, li, &l);
    ih_tensor_get(img, l.input[0], &in0);
    ih_tensor_get(img, l.output, &out);
    t->index = i;
    t->layer = li;
    t->j = i - s.first_task;
    t->steps = 1;
    t->step = 0;
    t->lo = t->hi = 0;
    dim = ih_layer_reduction(&l, &in0);
    if (s.tile_r > 0) {
        t->steps = (uint16_t)(((uint32_t)dim + s.tile_r - 1) / s.tile_r);
    }
    rest = t->j / t->steps;
    k = t->j % t->steps;
    n_c = ((uint32_t)out.shape.c + s.tile_c - 1) / s.tile_c;
    n_x = ((uint32_t)out.shape.w + s.tile_w - 1) / s.tile_w;
    n_y = ((uint32_t)out.shape.h + s.tile_h - 1) / s.tile_h;
    ci = rest % n_c;
    rest /= n_c;
    xi = rest % n_x;
    rest /= n_x;
    yi = rest % n_y;
    rest /= n_y;
    t->region.n0 = (int32_t)rest;
    t->region.n1 = (int32_t)rest + 1;
    t->region.y0 = (int32_t)(yi * s.tile_h);
    t->region.y1 = imin(t->region.y0 + (int32_t)s.tile_h, out.shape.h);
    t->region.x0 = (int32_t)(xi * s.tile_w);
    t->region.x1 = imin(t->region.x0 + (int32_t)s.tile_w, out.shape.w);
    t->region.c0 = (int32_t)(ci * s.tile_c);
    t->region.c1 = imin(t->region.c0 + (int32_t)s.tile_c, out.shape.c);
    if (t->steps > 1) {
        t->step = (uint16_t)k;
        t->lo = (int32_t)(k * s.tile_r);
        t->hi = imin((int32_t)((k + 1) * s.tile_r), dim);
    }
    t->commit = (uint8_t)((s.commit_every > 0 && (t->j + 1) % s.commit_every == 0) ||
                          (t->j + 1 == s.tasks && !(s.flags & IH_SCHEDULE_NO_COMMIT_AT_END)) || i + 1 == img->n_tasks);
    t->slot_off = t->prev_slot_off = 0;
    if (t->steps > 1) {
        t->slot_off = s.partial_base + (t->j % s.partial_slots) * s.partial_slot_bytes;
        if (t->j > 0) {
            t->prev_slot_off = s.partial_base + ((t->j - 1) % s.partial_slots) * s.partial_slot_bytes;
        }
    }
    return IH_OK;
}

static uint32_t ceil_u32(uint32_t a, uint32_t b) { return (a + b - 1) / b; }

uint32_t ih_chunks(const ih_region *r, uint32_t pixels)
{
    uint32_t n = (uint32_t)(r->n1 - r->n0), h = (uint32_t)(r->y1 - r->y0), w = (uint32_t)(r->x1 - r->x0), rows;
    if (pixels == 0 || n == 0 || h == 0 || w == 0) {
        return 1;
    }
    if (pixels >= w) {
        rows = pixels / w < h ? pixels / w : h;
        return n * ceil_u32(h, rows);
    }
    return n * h * ceil_u32(w, pixels);
}

void ih_chunk(const ih_region *r, uint32_t pixels, uint32_t j, ih_region *s, uint32_t *before)
{
    uint32_t h = (uint32_t)(r->y1 - r->y0), w = (uint32_t)(r->x1 - r->x0), c = (uint32_t)(r->c1 - r->c0);
    uint32_t rows, per, b, i, q, y;
    *s = *r;
    *before = 0;
    if (pixels == 0 || r->n1 <= r->n0 || h == 0 || w == 0) {
        return;
    }
    if (pixels >= w) {
        rows = pixels / w < h ? pixels / w : h;
        per = ceil_u32(h, rows);
        b = j / per;
        i = j % per;
        s->n0 = r->n0 + (int32_t)b;
        s->n1 = s->n0 + 1;
        s->y0 = r->y0 + (int32_t)(i * rows);
        s->y1 = imin(s->y0 + (int32_t)rows, r->y1);
    } else {
        per = ceil_u32(w, pixels);
        q = j / per;
        i = j % per;
        b = q / h;
        y = q % h;
        s->n0 = r->n0 + (int32_t)b;
        s->n1 = s->n0 + 1;
        s->y0 = r->y0 + (int32_t)y;
        s->y1 = s->y0 + 1;
        s->x0 = r->x0 + (int32_t)(i * pixels);
        s->x1 = imin(s->x0 + (int32_t)pixels, r->x1);
    }
    *before = (((uint32_t)(s->n0 - r->n0) * h + (uint32_t)(s->y0 - r->y0)) * w + (uint32_t)(s->x0 - r->x0)) * c;
}
