/*
 * runtime.h - the intermittent runtime: boot, resume, run a task, commit,
 * over the port interface (port.h), following the commit rules of
 * harness/plan (package doc) exactly as boards/sim does:
 *
 *   1. activations live in NVM at the plan's offsets;
 *   2. a task reads its inputs from NVM in place, computes its output region
 *      in SRAM (one static buffer of IH_SRAM_OUT_BYTES) and writes only that
 *      region (or its partial-sum slot) back through port_nvm_write;
 *   3. after a task marked commit, and after all its writes, the runtime
 *      writes the progress word (tasks done): one NVM word, nothing else;
 *   4. at boot it reads the NVM header and resumes at the progress word when
 *      the magic and the plan tag match;
 *   5. an inference starts when the input is written and the progress word
 *      set to 0; it is done when the word equals the number of tasks.
 *
 * With the image's run-time rule (its rule section: capacitance, thresholds,
 * and per task the energy the rule asks for, all from the harness), before
 * each task the runtime reads port_supply_mv(); when the energy left above
 * brown-out does not cover the task (and a commit), it commits the work done
 * and sleeps until the capacitor is charged (port_sleep_until_charged), then
 * runs the task. It decides as boards/sim does for the same reading.
 *
 * With the image's just-in-time checkpoints (its jit section: threshold,
 * turn-on voltage, snapshot area, chunk sizes), a task's arithmetic runs in
 * chunks with a reading of port_supply_mv() before each; below the
 * threshold the runtime writes a snapshot of the task's SRAM state (the
 * packed region of its chunks done, the task, the chunk count) into the NVM
 * snapshot area and sleeps until charged, then goes on; a boot resumes a
 * valid snapshot (Hibernus, QuickRecall; harness/sched/jit.go).
 *
 * ih_task_begin(task) is called after the rule and before every task's work:
 * an empty, never inlined function, a debugger hook (the emulated board
 * stops there).
 *
 * Nothing here allocates; all state is static. Built with
 * -DIH_BROKEN_COMMIT_BEFORE_WRITE it writes the progress word BEFORE a
 * task's outputs (a broken protocol, for tests that show fault injection
 * catches it).
 */
#ifndef IH_RUNTIME_H
#define IH_RUNTIME_H

#include <stdint.h>

#include "image.h"
#include "tasks.h"

/* SRAM for one task's output region, or its int32 partial sums (the int8
 * outputs of a last reduction step are written over its sums). A plan with
 * a larger task is refused at boot with IH_ERR_SRAM. */
#ifndef IH_SRAM_OUT_BYTES
#define IH_SRAM_OUT_BYTES 4096
#endif

/* How the runtime boots. (The run-time rule's capacitor, thresholds and
 * task energies come with the image, from the profile the harness planned
 * with: nothing of the power system is compiled in.) */
typedef struct {
    uint8_t check_crc; /* check the image's CRC-32 once per image (ih_rt_boot) */
} ih_config;

/* The defaults: check the CRC. */
void ih_config_default(ih_config *cfg);

/* Never inlined, and a compiler barrier: what a debugger hook needs. */
#if defined(__GNUC__) || defined(__clang__)
#define IH_NOINLINE __attribute__((noinline))
#define IH_BARRIER() __asm__ volatile("" ::: "memory")
#else
#define IH_NOINLINE
#define IH_BARRIER() ((void)0)
#endif

/* The debugger hook before every task's work (after the run-time rule):
 * empty; the emulated board stops here (boards/emulated). */
IH_NOINLINE void ih_task_begin(uint32_t task);

/* Results of ih_rt_step and ih_rt_run (errors are negative IH_ERR_*). */
enum {
    IH_RT_RAN = 1,  /* one task ran */
    IH_RT_DONE = 2, /* the inference is complete: the output is valid */
    IH_RT_IDLE = 3  /* no inference loaded (or another plan's NVM) */
};

/* Boot: opens and checks the image (port_image), checks that every task
 * fits IH_SRAM_OUT_BYTES and the plan fits port_nvm_bytes, and reads the NVM
 * header. cfg may be NULL (defaults). Call at every power-up.
 * With cfg->check_crc the image's CRC-32 is checked only when the NVM header
 * does not already record it as verified (IH_NVM_VERIFIED_CRC_OFFSET holds
 * the image header's CRC field): the first boot after an image changes
 * reads the whole image and records it; the boots after it skip the read,
 * which at every power-up would cost more than one power cycle holds (129.6
 * cycles per image byte on the STM32, ~11 M for an 85 KB image). */
int ih_rt_boot(const ih_config *cfg);

/* What the host does over the wire: writes the input tensor and the NVM
 * header, then sets the progress word to 0. The progress word is first set
 * to all ones (no inference) so that a load cut by a brown-out never resumes
 * an old inference on a half-written input. */
int ih_rt_load_input(const uint8_t *data, uint32_t bytes);

/* The same in pieces, for an input that arrives in frames: begin (progress
 * word to all ones), chunks at byte offsets into the input tensor, then end
 * (NVM header, progress word 0). */
int ih_rt_load_begin(void);
int ih_rt_load_chunk(uint32_t offset, const uint8_t *data, uint32_t bytes);
int ih_rt_load_end(void);

/* The input tensor's size in bytes (0 before a successful boot). */
uint32_t ih_rt_input_bytes(void);

/* Runs the next task (the run-time rule first, when the image asks for it). */
int ih_rt_step(void);

/* Steps until the inference is done (or idle, or an error). */
int ih_rt_run(void);

/* The index of the task ih_rt_step runs next. */
uint32_t ih_rt_next(void);

/* The number of tasks of the plan, the progress word in NVM. */
uint32_t ih_rt_tasks(void);
uint32_t ih_rt_progress(void);

/* The turn-on voltage of the image's rule section, mV: what
 * port_sleep_until_charged waits for (0 without the rule or before boot). */
uint16_t ih_rt_turn_on_mv(void);

/* The opened image (after a successful boot). */
const ih_image *ih_rt_image(void);

/* The output tensor in NVM (valid when the inference is done). */
const uint8_t *ih_rt_output(uint32_t *bytes);

/* Counters since the last reset (diagnostics, kept in SRAM). */
typedef struct {
    uint32_t boots, tasks_run, commits, early_commits, sleeps, snapshots, restores;
} ih_rt_stats;
const ih_rt_stats *ih_rt_get_stats(void);
void ih_rt_reset_stats(void);

/* Overwrites the runtime's SRAM state and buffer with a pattern: what a
 * brown-out does to SRAM, for the host port's fault injection. */
void ih_rt_poison(void);

#endif
