/*
 * port_msp430.h - what the MSP430FR5994 port adds to port.h for its startup
 * code and main.c.
 */
#ifndef IH_PORT_MSP430_H
#define IH_PORT_MSP430_H

#include <stdint.h>

/* The deployed input's region (ports/common/app.h), from the linker script. */
const uint8_t *msp430_input_region(uint32_t *bytes);

/* Sleeps in LPM3 forever (after the inference, until the next power-up). */
void msp430_idle(void) __attribute__((noreturn));

/* The high half of the cycle counter, counted by the Timer1_A1 interrupt. */
extern volatile uint16_t ih_ta1_wraps;

#endif
