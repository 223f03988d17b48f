/*
 * app.h - the firmware's main loop, shared by the ports (ports/stm32f4,
 * ports/msp430fr5994): boot the runtime at every power-up, resume the
 * inference that NVM holds or start one on the input deployed with the
 * firmware, run it task by task, and report every event on the UART.
 *
 * The events are reported by one function (app_event in app.c): by default
 * as lines of text (app_main); built with -DIH_APP_WIRE (and runtime/wire.c)
 * as frames of the wire protocol (firmware/PROTOCOL.md), from the command
 * loop app_wire_main below. The host program firmware/host/board runs that
 * loop; the ports' main.c call app_wire_main when built with -DIH_APP_WIRE (their default) and app_main otherwise.
 *
 * The deployed input: a region of flash or FRAM that starts with a 16-byte
 * header, little-endian:
 *
 *   0   u32  magic 0x4E494849 ("IHIN")
 *   4   u32  bytes of the input tensor that follow the header
 *   8   u32  reserved, 0
 *   12  u32  reserved, 0
 *   16  ...  the raw input tensor (as harness/bundled/tinycnn_input.bin)
 *
 * The ports' linker scripts write this header in front of the file linked
 * in; a region without the magic holds no input.
 */
#ifndef IH_APP_H
#define IH_APP_H

#include <stdint.h>

#include "runtime.h"

#define IH_INPUT_MAGIC 0x4E494849u /* "IHIN" */
#define IH_INPUT_HEADER_BYTES 16u

/* One power-up: boots the runtime with cfg; when NVM holds an inference in
 * progress, resumes it; otherwise (idle, or the last one finished) loads
 * the deployed input from input_region (region_bytes long; NULL or no
 * magic: none) and runs a new inference. Returns when the inference is
 * done, or at once when there is nothing to run or an error stops it: the
 * port then idles until the next power-up. Returns the last runtime status
 * (IH_RT_DONE, IH_RT_IDLE or a negative IH_ERR_*). */
int app_main(const ih_config *cfg, const uint8_t *input_region, uint32_t region_bytes);

/* The deployed input in a region (its header checked), or NULL. */
const uint8_t *app_input(const uint8_t *input_region, uint32_t region_bytes, uint32_t *bytes);


#ifdef IH_APP_WIRE
/*
 * The wire protocol main loop (firmware/PROTOCOL.md), built with -DIH_APP_WIRE
 * (and runtime/wire.c). Events then go out as wire frames from app_event;
 * without IH_APP_WIRE app_event prints the text lines above.
 *
 * What the board keeps across power failures besides the NVM region: the
 * boot count and the image-valid flag (struct app_persist: the port places
 * it in memory that survives a brown-out). The started inference number is
 * NVM header bytes 12..15 (harness/plan/FORMAT.md).
 */
struct app_persist {
    uint32_t boots;
    uint32_t image_valid; /* 1: a committed image is in the image area */
    uint32_t image_len;   /* its length */
};

struct app_wire_config {
    const ih_config *cfg;          /* runtime config, NULL: defaults */
    struct app_persist *persist;   /* survives brown-outs */
    uint8_t *image_area;           /* writable image area, NULL: DEPLOY is refused (FAILED) */
    uint32_t image_cap;            /* its capacity in bytes */
    /* Called after a DEPLOY_COMMIT succeeded (the port makes port_image()
     * return the image area's first len bytes); may be NULL. */
    void (*image_committed)(uint32_t len);
    uint8_t boot_reason;           /* WIRE_BOOT_* for this boot */
    const char *name;              /* the device profile's name, at most 16 characters */
    void (*idle)(void);            /* called when there is nothing to do; may be NULL */
};

/* One power-up: boots the runtime, sends BOOT, then serves commands and
 * runs the inference in NVM task by task. Returns only when running
 * becomes impossible (never in normal operation). */
int app_wire_main(const struct app_wire_config *wc);
#endif

#endif
