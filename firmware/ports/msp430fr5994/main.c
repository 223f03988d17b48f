/*
 * main.c - the MSP430FR5994 firmware: at every power-up bring up the board,
 * then run one of the two main loops of ports/common/app.c on eUSCI_A0:
 *
 * - built with -DIH_APP_WIRE (the default): the wire protocol
 *   (firmware/PROTOCOL.md) on the image in the FRAM PLAN region, the one
 *   linked in or one DEPLOY wrote there (FRAM is written like RAM with the
 *   MPU off, so the region is the image area: `harness calibrate --board
 *   msp430 --port P` and `harness board --deploy` load their plans there).
 * - without: the text log; resume the inference in FRAM or start one on the
 *   deployed input, run it (sleeping in LPM3 when the run-time rule says the
 *   capacitor is low), then sleep until the next power-up.
 */
#include "app.h"
#include "port.h"
#include "port_msp430.h"

#ifdef IH_APP_WIRE
#include "wire.h"

/* Boot count and image-valid flag: in FRAM (.ih_persist, NOLOAD, just below
 * the NVM region in msp430fr5994.ld), kept across power failures. */
static struct app_persist persist __attribute__((section(".ih_persist")));
extern uint8_t __ih_plan_start[], __ih_plan_end[];

int main(void)
{
    static ih_config cfg;
    static struct app_wire_config wc;
    port_init();
    ih_config_default(&cfg); /* the rule's capacitor and thresholds come with the image */
    persist.image_valid = port_image() ? 1u : 0u;
    persist.image_len = port_image_bytes();
    wc.cfg = &cfg;
    wc.persist = &persist;
    wc.image_area = __ih_plan_start; /* DEPLOY writes the PLAN region itself */
    wc.image_cap = (uint32_t)(__ih_plan_end - __ih_plan_start);
    wc.image_committed = 0;
    wc.boot_reason = WIRE_BOOT_POWER_ON;
    wc.name = "msp430fr5994";
    wc.idle = 0;
    (void)app_wire_main(&wc);
    msp430_idle();
}
#else
int main(void)
{
    ih_config cfg;
    const uint8_t *input;
    uint32_t input_bytes;
    port_init();
    ih_config_default(&cfg); /* the rule's capacitor and thresholds come with the image */
    input = msp430_input_region(&input_bytes);
    (void)app_main(&cfg, input, input_bytes);
    msp430_idle();
}
#endif
