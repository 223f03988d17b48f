/*
 * msp430fr5994.h - the MSP430FR5994 registers this port uses, written by
 * hand from TI's MSP430FR5994 datasheet (SLASE54, peripheral file map) and
 * the MSP430FR58xx/59xx/68xx/69xx family user's guide (SLAU367: CS, FRCTL,
 * eUSCI_A UART, ADC12_B, REF_A, Timer_A, WDT_A, PMM). No TI headers (Debian
 * has none; the port builds with clang --target=msp430 for checking and
 * with TI's msp430-elf-gcc for the board).
 */
#ifndef IH_MSP430FR5994_H
#define IH_MSP430FR5994_H

#include <stdint.h>

#define IH_REG8(addr) (*(volatile uint8_t *)(uintptr_t)(addr))
#define IH_REG16(addr) (*(volatile uint16_t *)(uintptr_t)(addr))

/* WDT_A */
#define WDTCTL IH_REG16(0x015Cu)
#define WDTPW 0x5A00u
#define WDTHOLD 0x0080u

/* PMM: GPIO stays locked in its power-on high impedance until LOCKLPM5 is cleared. */
#define PM5CTL0 IH_REG16(0x0130u)
#define LOCKLPM5 0x0001u

/* FRAM controller: one wait state above 8 MHz (NWAITS in bits 4-6). */
#define FRCTL0 IH_REG16(0x0140u)
#define FRCTL0_H IH_REG8(0x0141u)
#define FRCTLPW 0xA500u
#define NWAITS_1 0x0010u

/* Clock system (CS). */
#define CSCTL0_H IH_REG8(0x0161u) /* password byte: 0xA5 unlocks */
#define CSCTL1 IH_REG16(0x0162u)
#define CSCTL2 IH_REG16(0x0164u)
#define CSCTL3 IH_REG16(0x0166u)
#define CSKEY_H 0xA5u
#define DCORSEL 0x0040u
#define DCOFSEL_0 0x0000u /* 1 MHz */
#define DCOFSEL_4 0x0008u /* with DCORSEL: 16 MHz */
#define SELA__VLOCLK 0x0100u
#define SELS__DCOCLK 0x0030u
#define SELM__DCOCLK 0x0003u
#define DIVA__1 0x0000u
#define DIVS__1 0x0000u
#define DIVM__1 0x0000u
#define DIVA__4 0x0200u
#define DIVS__4 0x0020u
#define DIVM__4 0x0002u

/* Port 2: P2.0 = UCA0TXD, P2.1 = UCA0RXD (secondary function: SEL1 = 1, SEL0 = 0),
 * the LaunchPad's back-channel UART. */
#define P2SEL0 IH_REG8(0x020Bu)
#define P2SEL1 IH_REG8(0x020Du)

/* eUSCI_A0 in UART mode. */
#define UCA0CTLW0 IH_REG16(0x05C0u)
#define UCA0BRW IH_REG16(0x05C6u)
#define UCA0MCTLW IH_REG16(0x05C8u)
#define UCA0STATW IH_REG16(0x05CAu)
#define UCA0RXBUF IH_REG16(0x05CCu)
#define UCA0TXBUF IH_REG16(0x05CEu)
#define UCA0IFG IH_REG16(0x05DCu)
#define UCSWRST 0x0001u
#define UCSSEL__SMCLK 0x0080u
#define UCOS16 0x0001u
#define UCBRF_SHIFT 4
#define UCBRS_SHIFT 8
#define UCRXIFG 0x0001u
#define UCTXIFG 0x0002u

/* REF_A: the reference of the ADC. */
#define REFCTL0 IH_REG16(0x01B0u)
#define REFON 0x0001u
#define REFVSEL_1 0x0010u /* 2.0 V */
#define REFGENBUSY 0x0400u
#define REFGENRDY 0x1000u

/* ADC12_B. */
#define ADC12CTL0 IH_REG16(0x0800u)
#define ADC12CTL1 IH_REG16(0x0802u)
#define ADC12CTL2 IH_REG16(0x0804u)
#define ADC12CTL3 IH_REG16(0x0806u)
#define ADC12IFGR0 IH_REG16(0x080Cu)
#define ADC12MCTL0 IH_REG16(0x0820u)
#define ADC12MEM0 IH_REG16(0x0860u)
#define ADC12SC 0x0001u
#define ADC12ENC 0x0002u
#define ADC12ON 0x0010u
#define ADC12SHT0_8 0x0800u /* 256 ADC12CLK cycles: the AVCC/2 divider needs a long sample */
#define ADC12SHP 0x0200u
#define ADC12RES_2 0x0020u  /* 12 bits */
#define ADC12BATMAP 0x0040u /* A31 = AVCC/2 */
#define ADC12INCH_31 0x001Fu
#define ADC12VRSEL_1 0x0100u /* VR+ = VREF buffered, VR- = AVSS */
#define ADC12IFG0 0x0001u

/* Timer_A: TA0 wakes the CPU from LPM3 (ACLK = VLO), TA1 counts SMCLK cycles. */
#define TA0CTL IH_REG16(0x0340u)
#define TA0CCTL0 IH_REG16(0x0342u)
#define TA0R IH_REG16(0x0350u)
#define TA0CCR0 IH_REG16(0x0352u)
#define TA1CTL IH_REG16(0x0380u)
#define TA1R IH_REG16(0x0390u)
#define TA1IV_ADDR 0x03AEu
#define TASSEL__ACLK 0x0100u
#define TASSEL__SMCLK 0x0200u
#define MC__UP 0x0010u
#define MC__CONTINUOUS 0x0020u
#define TACLR 0x0004u
#define TAIE 0x0002u
#define TAIFG 0x0001u
#define CCIE 0x0010u

/* Status register bits. */
#define SR_GIE 0x0008u
#define SR_LPM3 0x00D0u /* CPUOFF | SCG0 | SCG1 */

/* Interrupt vectors (SLASE54 interrupt table): addresses of the words. */
#define VEC_TIMER1_A1 0xFFE0u
#define VEC_TIMER0_A0 0xFFEAu
#define VEC_RESET 0xFFFEu

#define IH_MSP430_MCLK_HZ 16000000ul
#define IH_MSP430_VLO_HZ 9400u /* typical VLO (SLASE54), +-some 10 % */

#endif
