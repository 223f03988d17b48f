/*
 * main.c - the STM32F405 firmware: at every power-up (reset) bring up the
 * board, then run one of the two main loops of ports/common/app.c on USART1:
 *
 * - built with -DIH_APP_WIRE (the default, firmware.elf): the wire protocol
 *   (firmware/PROTOCOL.md). The image linked into flash (or put there by
 *   QEMU's -device loader) is the deployed one; the guest cannot write
 *   flash, so there is no writable image area and DEPLOY is refused (ACK
 *   FAILED detail 1). SET_INPUT and START run inferences on it.
 * - without (firmware-text.elf): the text log; resume the inference in NVM
 *   or start one on the deployed input, then wait for the next reset.
 */
#include "app.h"
#include "port.h"
#include "port_stm32f4.h"

#ifdef IH_APP_WIRE
#include "wire.h"

/* Boot count and image-valid flag: in .ih_persist, a NOLOAD section just
 * below the NVM region (stm32f4.ld), never zeroed by the startup code or
 * QEMU's loader, so it survives a reset as the NVM region does. */
static struct app_persist persist __attribute__((section(".ih_persist")));

int main(void)
{
    static ih_config cfg;
    static struct app_wire_config wc;
    port_init();
    ih_config_default(&cfg); /* the rule's capacitor and thresholds come with the image */
    /* The image is the one in flash: valid when it has the image magic (the
     * runtime's boot checks the rest). */
    persist.image_valid = port_image() ? 1u : 0u;
    persist.image_len = port_image_bytes();
    wc.cfg = &cfg;
    wc.persist = &persist;
    wc.image_area = 0; /* flash is not writable from the guest: DEPLOY answers FAILED */
    wc.image_cap = 0;
    wc.image_committed = 0;
    wc.boot_reason = WIRE_BOOT_RESET;
    wc.name = "stm32f405";
    wc.idle = 0;
    (void)app_wire_main(&wc);
    stm32_idle();
}
#else
int main(void)
{
    ih_config cfg;
    const uint8_t *input;
    uint32_t input_bytes;
    port_init();
    ih_config_default(&cfg);
    input = stm32_input_region(&input_bytes);
    (void)app_main(&cfg, input, input_bytes);
    stm32_idle();
}
#endif
