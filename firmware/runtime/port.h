/*
 * port.h - what a port (a board, or the host build used in tests) gives the
 * portable runtime. The runtime never touches hardware directly; each port
 * (ports/stm32f4, ports/msp430fr5994, host/) implements these functions.
 *
 * NVM is memory-mapped and readable in place (MSP430 FRAM; on the emulated
 * STM32 a reserved SRAM region that survives QEMU's system_reset). Writes go
 * through port_nvm_write so that they complete in order, word by word, and so
 * that the host build can cut them by an injected brown-out.
 */
#ifndef IH_PORT_H
#define IH_PORT_H

#include <stdint.h>

/* Bring up clocks, the UART, the cycle counter and the ADC. */
void port_init(void);

/* The NVM region: base address and size in bytes. */
uint8_t *port_nvm(void);
uint32_t port_nvm_bytes(void);

/* Write n bytes at NVM offset off, in increasing address order, one NVM
 * word (2 bytes on the MSP430, 4 on the STM32) at a time. A power failure
 * leaves every word either written or not. */
void port_nvm_write(uint32_t off, const void *src, uint32_t n);

/* The plan image (harness/plan/FORMAT.md), in flash or FRAM; NULL if none
 * was deployed. */
const uint8_t *port_image(void);
uint32_t port_image_bytes(void);

/* A free-running cycle counter (wraps at 2^32). */
uint32_t port_cycles(void);

/* The supply (capacitor) voltage in millivolts, for the run-time rule; 0 if
 * the board cannot measure it. */
uint16_t port_supply_mv(void);

/* Sleep in the lowest power mode that keeps SRAM until the supply is back
 * at the turn-on voltage (the run-time rule). */
void port_sleep_until_charged(void);

/* The serial line of the wire protocol: non-blocking read (-1 if no byte),
 * blocking write. */
int port_uart_getc(void);
void port_uart_write(const uint8_t *buf, uint32_t n);

#endif
