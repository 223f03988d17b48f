/*
 * main.c - the MSP430FR5994 firmware: at every power-up bring up the board,
 * boot the runtime, resume the inference in FRAM or start one on the
 * deployed input, run it (sleeping in LPM3 when the run-time rule says the
 * capacitor is low) and report it on eUSCI_A0 (ports/common/app.c), then
 * sleep until the next power-up.
 */
#include "app.h"
#include "port.h"
#include "port_msp430.h"

int main(void)
{
    ih_config cfg;
    const uint8_t *input;
    uint32_t input_bytes;
    port_init();
    ih_config_default(&cfg); /* the msp430fr5994 profile: 100 uF, 2.8 V / 2.4 V, iNAS's costs */
    msp430_set_turn_on_mv(cfg.von_mv);
    input = msp430_input_region(&input_bytes);
    (void)app_main(&cfg, input, input_bytes);
    msp430_idle();
}
