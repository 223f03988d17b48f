/*
 * port_msp430.c - port.h on the MSP430FR5994 (MSP-EXP430FR5994 LaunchPad
 * class boards), registers from msp430fr5994.h, memory map from
 * msp430fr5994.ld.
 *
 * - Clock: DCO at 16 MHz for MCLK and SMCLK, ACLK from the VLO (~9.4 kHz).
 *   The FRAM gets its wait state (NWAITS = 1) before the DCO goes above
 *   8 MHz, and the dividers are at /4 while the DCO changes (errata CS12).
 * - UART: eUSCI_A0 on P2.0/P2.1 (the LaunchPad's back channel), 115200 8N1
 *   from SMCLK: UCOS16, UCBRx = 8, UCBRFx = 10, UCBRSx = 0xF7 (SLAU367's
 *   table for 16 MHz).
 * - NVM: the .ih_nvm section in FRAM (NOLOAD: the programmer leaves it and
 *   the startup code never zeroes it), written one aligned 16-bit word at a
 *   time, which FRAM completes atomically. The MPU stays off (its reset
 *   state), so every FRAM address is writable.
 * - Image: the .ih_plan section in FRAM; NULL when it holds no "IHPL" image.
 * - Cycles: Timer1_A counting SMCLK (= MCLK), its 16 bits extended by the
 *   overflow interrupt (startup.c); it stops in LPM3.
 * - Supply: ADC12_B converts AVCC/2 (internal channel A31) against the
 *   2.0 V reference: mV = raw * 2 * 2000 / 4095.
 * - Sleep: LPM3 in steps of about 10 ms (Timer0_A from the VLO wakes the
 *   CPU), until the supply reads the turn-on voltage of the image's rule
 *   section (ih_rt_turn_on_mv).
 */
#include "port.h"

#include "image.h"
#include "le.h"
#include "msp430fr5994.h"
#include "port_msp430.h"
#include "runtime.h"

extern uint8_t __ih_nvm_start[], __ih_nvm_end[];
extern uint8_t __ih_plan_start[], __ih_plan_end[];
extern uint8_t __ih_input_start[], __ih_input_end[];

volatile uint16_t ih_ta1_wraps;

/* Bounded waits: a peripheral that never gets ready gives up instead of hanging. */
#define IH_SPIN 20000u

static uint32_t region_bytes(const uint8_t *start, const uint8_t *end)
{
    return (uint32_t)((uintptr_t)end - (uintptr_t)start);
}

static void irq_enable(void) { __asm__ volatile("nop\n\teint\n\tnop"); }

static void clock_init(void)
{
    volatile uint16_t i;
    FRCTL0 = FRCTLPW | NWAITS_1; /* before MCLK goes above 8 MHz */
    FRCTL0_H = 0;                /* lock FRCTL0 */
    CSCTL0_H = CSKEY_H;
    CSCTL1 = DCOFSEL_0;
    CSCTL2 = SELA__VLOCLK | SELS__DCOCLK | SELM__DCOCLK;
    CSCTL3 = DIVA__4 | DIVS__4 | DIVM__4;
    CSCTL1 = DCORSEL | DCOFSEL_4;
    for (i = 0; i < 20u; i++) {
        /* about 10 us for the DCO to settle (at 4 MHz) */
    }
    CSCTL3 = DIVA__1 | DIVS__1 | DIVM__1;
    CSCTL0_H = 0;
}

static void uart_init(void)
{
    P2SEL0 = (uint8_t)(P2SEL0 & ~0x03u);
    P2SEL1 = (uint8_t)(P2SEL1 | 0x03u);
    PM5CTL0 = (uint16_t)(PM5CTL0 & ~LOCKLPM5);
    UCA0CTLW0 = UCSWRST;
    UCA0CTLW0 = UCSWRST | UCSSEL__SMCLK;
    UCA0BRW = 8;
    UCA0MCTLW = (uint16_t)(UCOS16 | (10u << UCBRF_SHIFT) | (0xF7u << UCBRS_SHIFT));
    UCA0CTLW0 = UCSSEL__SMCLK; /* out of reset: 8N1 */
}

static void cycles_init(void)
{
    ih_ta1_wraps = 0;
    TA1CTL = TASSEL__SMCLK | MC__CONTINUOUS | TACLR | TAIE;
}

void port_init(void)
{
    clock_init();
    uart_init();
    cycles_init();
    irq_enable();
}

uint8_t *port_nvm(void) { return __ih_nvm_start; }

uint32_t port_nvm_bytes(void) { return region_bytes(__ih_nvm_start, __ih_nvm_end); }

void port_nvm_write(uint32_t off, const void *src, uint32_t n)
{
    const uint8_t *s = src;
    volatile uint8_t *d;
    uint32_t size = port_nvm_bytes();
    if (off > size || n > size - off) {
        return; /* the runtime never writes past the NVM it checked */
    }
    d = __ih_nvm_start + off;
    while (n > 0) {
        if (((uintptr_t)d & 1u) == 0 && n >= 2) {
            /* One aligned word: a single store, atomic in FRAM. */
            *(volatile uint16_t *)(uintptr_t)d = (uint16_t)((unsigned)s[0] | ((unsigned)s[1] << 8));
            d += 2;
            s += 2;
            n -= 2;
        } else {
            *d++ = *s++;
            n--;
        }
    }
}

const uint8_t *port_image(void)
{
    return ih_rd32(__ih_plan_start) == IH_IMAGE_MAGIC ? __ih_plan_start : 0;
}

uint32_t port_image_bytes(void)
{
    uint32_t region = region_bytes(__ih_plan_start, __ih_plan_end), total;
    if (!port_image()) {
        return 0;
    }
    total = ih_rd32(__ih_plan_start + 8);
    return total < region ? total : region; /* a larger total: the image check refuses it */
}

uint32_t port_cycles(void)
{
    uint16_t hi, lo;
    do {
        hi = ih_ta1_wraps;
        lo = TA1R;
    } while (hi != ih_ta1_wraps);
    return ((uint32_t)hi << 16) | lo;
}

uint16_t port_supply_mv(void)
{
    uint16_t i, raw;
    uint32_t mv;
    for (i = 0; (REFCTL0 & REFGENBUSY) && i < IH_SPIN; i++) {
    }
    REFCTL0 = REFVSEL_1 | REFON;
    ADC12CTL0 = 0; /* ENC cleared: the ADC may be configured */
    ADC12CTL0 = ADC12SHT0_8 | ADC12ON;
    ADC12CTL1 = ADC12SHP; /* MODOSC, single channel, single conversion */
    ADC12CTL2 = ADC12RES_2;
    ADC12CTL3 = ADC12BATMAP; /* conversions start at ADC12MEM0 */
    ADC12MCTL0 = ADC12INCH_31 | ADC12VRSEL_1;
    for (i = 0; !(REFCTL0 & REFGENRDY) && i < IH_SPIN; i++) {
    }
    ADC12IFGR0 = 0;
    ADC12CTL0 = ADC12SHT0_8 | ADC12ON | ADC12ENC | ADC12SC;
    for (i = 0; !(ADC12IFGR0 & ADC12IFG0) && i < IH_SPIN; i++) {
    }
    raw = (ADC12IFGR0 & ADC12IFG0) ? ADC12MEM0 : 0; /* reading clears the flag */
    ADC12CTL0 = ADC12SHT0_8 | ADC12ON;
    ADC12CTL0 = 0;
    REFCTL0 = 0;
    if (raw == 0) {
        return 0; /* no conversion: cannot measure */
    }
    mv = ((uint32_t)(raw & 0x0FFFu) * 4000ul + 2047ul) / 4095ul;
    return (uint16_t)mv;
}

/* LPM3 until Timer0_A (ACLK) reaches ticks; its interrupt wakes the CPU. */
static void sleep_ticks(uint16_t ticks)
{
    TA0CCR0 = ticks;
    TA0CCTL0 = CCIE;
    TA0CTL = TASSEL__ACLK | MC__UP | TACLR;
    __asm__ volatile("bis.w #0x00D8, r2\n\tnop"); /* SR_LPM3 | SR_GIE */
    TA0CTL = 0;
    TA0CCTL0 = 0;
}

void port_sleep_until_charged(void)
{
    uint16_t mv, turn_on_mv = ih_rt_turn_on_mv();
    while ((mv = port_supply_mv()) != 0 && mv < turn_on_mv) {
        sleep_ticks(IH_MSP430_VLO_HZ / 100u); /* about 10 ms */
    }
}

int port_uart_getc(void)
{
    if (UCA0IFG & UCRXIFG) {
        return (int)(UCA0RXBUF & 0xFFu);
    }
    return -1;
}

void port_uart_write(const uint8_t *buf, uint32_t n)
{
    uint32_t i;
    for (i = 0; i < n; i++) {
        while (!(UCA0IFG & UCTXIFG)) {
        }
        UCA0TXBUF = buf[i];
    }
}

const uint8_t *msp430_input_region(uint32_t *bytes)
{
    *bytes = region_bytes(__ih_input_start, __ih_input_end);
    return __ih_input_start;
}

void msp430_idle(void)
{
    for (;;) {
        __asm__ volatile("bis.w #0x00D8, r2\n\tnop");
    }
}
