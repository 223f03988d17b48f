/*
 * port_stm32f4.h - what the STM32F405 port adds to port.h for its startup
 * code and main.c.
 */
#ifndef IH_PORT_STM32F4_H
#define IH_PORT_STM32F4_H

#include <stdint.h>

#include "runtime.h"

/* The deployed input's region (ports/common/app.h), from the linker script. */
const uint8_t *stm32_input_region(uint32_t *bytes);

/* The supply voltage port_supply_mv returns, mV: there is no ADC model
 * under QEMU, so a debugger writes it (0 after every reset: .bss, "cannot
 * measure", and the run-time rule never sleeps). */
extern volatile uint16_t ih_supply_mv;

/* Waits for an interrupt forever (after the inference, until the next reset). */
void stm32_idle(void) __attribute__((noreturn));

/* Exception handlers the vector table (startup.c) names. */
void ih_systick_handler(void);
void ih_fault_handler(void);

#endif
