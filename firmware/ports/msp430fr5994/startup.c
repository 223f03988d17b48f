/*
 * startup.c - the MSP430FR5994's reset code and interrupt handlers.
 *
 * The reset vector (0xFFFE) and the two interrupt vectors the port uses
 * are written by the linker script (msp430fr5994.ld, by symbol), so that no
 * compiler-specific interrupt attribute or vector numbering is needed; the
 * handlers are a few instructions of assembly:
 *
 *   ih_reset       sets the stack pointer and calls ih_start (C), which
 *                  stops the watchdog, copies .data, zeroes .bss (and
 *                  nothing else: the NVM section in FRAM keeps its
 *                  contents) and calls main
 *   ih_ta0_isr     Timer0_A0 CCR0 (its flag clears itself): clears the
 *                  low-power bits of the saved status register, so that the
 *                  CPU stays awake after the interrupt (the wake-up of
 *                  port_sleep_until_charged)
 *   ih_ta1_isr     Timer1_A1 overflow: reading TA1IV clears TAIFG; counts
 *                  the high half of port_cycles
 *   ih_default_isr every other vector: returns
 *
 * With TI's GCC and -mlarge, functions are called with CALLA; clang
 * (msp430-check) has only the small model, and CALL.
 */
#include <stdint.h>

#include "msp430fr5994.h"
#include "port_msp430.h"

#if defined(__MSP430X_LARGE__)
#define IH_CALL "calla"
#else
#define IH_CALL "call"
#endif

__asm__(".section .text.ih_reset,\"ax\",@progbits\n"
        ".global ih_reset\n"
        "ih_reset:\n"
        "    mov.w #__ih_stack_top, r1\n"
        "    " IH_CALL " #ih_start\n"
        "1:  jmp 1b\n"
        "\n"
        ".section .text.ih_isr,\"ax\",@progbits\n"
        ".global ih_ta0_isr\n"
        "ih_ta0_isr:\n"
        "    bic.w #0x00F0, 0(r1)\n"
        "    reti\n"
        ".global ih_ta1_isr\n"
        "ih_ta1_isr:\n"
        "    tst.w &0x03AE\n"
        "    inc.w &ih_ta1_wraps\n"
        "    reti\n"
        ".global ih_default_isr\n"
        "ih_default_isr:\n"
        "    reti\n");

extern uint16_t __ih_data_start[], __ih_data_end[], __ih_data_load[];
extern uint16_t __ih_bss_start[], __ih_bss_end[];

int main(void);
void ih_start(void);

void ih_start(void)
{
    uint16_t *d = __ih_data_start;
    const uint16_t *s = __ih_data_load;
    WDTCTL = WDTPW | WDTHOLD;
    while (d < __ih_data_end) {
        *d++ = *s++;
    }
    for (d = __ih_bss_start; d < __ih_bss_end; d++) {
        *d = 0;
    }
    (void)main();
    for (;;) {
    }
}
