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
 * With the image's run-time rule flag, before each task the runtime reads
 * port_supply_mv(); when the energy left above brown-out does not cover the
 * task (and a commit), it commits the work done and sleeps until the
 * capacitor is charged (port_sleep_until_charged), then runs the task.
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

/* The board's power system and cost estimates, for the run-time rule. The
 * energy above brown-out at v mV is cap_uf * (v^2 - voff^2) / 2; a task's
 * energy is estimated from its multiply-accumulates and NVM traffic. */
typedef struct {
    uint32_t cap_uf;            /* storage capacitor, microfarads */
    uint16_t von_mv, voff_mv;   /* turn-on and brown-out thresholds, millivolts */
    uint32_t task_fixed_nj;     /* per task: transfers' fixed costs, loop set-up */
    uint32_t mac_pj;            /* one multiply-accumulate (or pooling/element step) */
    uint32_t read_pj_per_byte;  /* NVM -> CPU */
    uint32_t write_pj_per_byte; /* CPU -> NVM */
    uint32_t commit_nj;         /* one progress-word write */
    uint32_t sense_nj;          /* one supply reading */
    uint8_t check_crc;          /* check the image's CRC-32 once per image (ih_rt_boot) */
} ih_config;

/* The MSP430FR5994 defaults of boards/profiles/msp430fr5994.yaml: 100 uF,
 * 2.8 V / 2.4 V; iNAS's measured NVM costs; CPU multiply plus add per MAC. */
void ih_config_default(ih_config *cfg);

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

/* The opened image (after a successful boot). */
const ih_image *ih_rt_image(void);

/* The output tensor in NVM (valid when the inference is done). */
const uint8_t *ih_rt_output(uint32_t *bytes);

/* Counters since the last reset (diagnostics, kept in SRAM). */
typedef struct {
    uint32_t boots, tasks_run, commits, early_commits, sleeps;
} ih_rt_stats;
const ih_rt_stats *ih_rt_get_stats(void);
void ih_rt_reset_stats(void);

/* Overwrites the runtime's SRAM state and buffer with a pattern: what a
 * brown-out does to SRAM, for the host port's fault injection. */
void ih_rt_poison(void);

#endif
