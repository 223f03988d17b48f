/*
 * app.h - the firmware's main loop, shared by the ports (ports/stm32f4,
 * ports/msp430fr5994): boot the runtime at every power-up, resume the
 * inference that NVM holds or start one on the input deployed with the
 * firmware, run it task by task, and report every event on the UART.
 *
 * The events are printed as lines of text by one function (app_event in
 * app.c); the wire protocol (firmware/PROTOCOL.md) replaces that function.
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

#endif
