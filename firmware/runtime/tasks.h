/*
 * tasks.h - the task list of a plan, computed from the schedules on the fly
 * in the order of plan.Expand (Go): layer by layer; within a layer batch by
 * batch, bands of tile_h rows, blocks of tile_w columns, blocks of tile_c
 * channels; with tile_r, each region's reduction steps in a row. No table:
 * a lookup walks the schedules (O(layers)) and divides.
 */
#ifndef IH_TASKS_H
#define IH_TASKS_H

#include <stdint.h>

#include "image.h"
#include "kernels.h"

typedef struct {
    uint32_t index; /* in the plan */
    uint16_t layer;
    uint32_t j; /* index within the layer */
    ih_region region;
    uint16_t step, steps; /* steps == 1: whole reductions */
    int32_t lo, hi;       /* the reduction range of a step: [lo, hi) */
    uint8_t commit;       /* the progress word is written after this task */
    uint32_t slot_off;      /* NVM offset of the partial-sum slot it writes (a step before the last) */
    uint32_t prev_slot_off; /* the slot it reads (a step after the first) */
} ih_task;

/* Task i of an opened image; IH_ERR_TASKS if i is out of range. */
int ih_task_get(const ih_image *img, uint32_t i, ih_task *t);

/* Just-in-time checkpoints (harness/plan Chunks, Chunk): region r is
 * computed in chunks of at most pixels output pixels: several whole rows of
 * one batch when a row has at most pixels pixels, else runs of at most
 * pixels pixels within one row, in packed order. ih_chunk gives chunk j's
 * region and the number of r's elements before it. */
uint32_t ih_chunks(const ih_region *r, uint32_t pixels);
void ih_chunk(const ih_region *r, uint32_t pixels, uint32_t j, ih_region *s, uint32_t *before);

/* Whether the task is a step of a split reduction, and its last one. */
static inline int ih_task_split(const ih_task *t) { return t->steps > 1; }
static inline int ih_task_last(const ih_task *t) { return t->step + 1 >= t->steps; }

#endif
