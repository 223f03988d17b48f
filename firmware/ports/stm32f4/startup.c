/*
 * startup.c - the STM32F405's vector table and reset handler, in C: copies
 * .data from flash, zeroes .bss (and nothing else: the NVM region of the
 * linker script is left as it is, so that it survives a reset) and calls
 * main. The vector table holds the 16 Cortex-M4 exceptions and the 82
 * interrupts of the STM32F405 (RM0090, vector table); every interrupt but SysTick
 * goes to the fault handler, which prints the fault registers and stops.
 */
#include <stdint.h>

#include "port_stm32f4.h"

extern uint32_t __ih_data_start[], __ih_data_end[], __ih_data_load[];
extern uint32_t __ih_bss_start[], __ih_bss_end[];
extern uint32_t __ih_stack_top[];

int main(void);
void ih_reset_handler(void);

void ih_reset_handler(void)
{
    uint32_t *d = __ih_data_start;
    const uint32_t *s = __ih_data_load;
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

typedef union {
    void (*fn)(void);
    const void *sp;
} ih_vector;

/* Every interrupt: the fault handler. */
#define F_ {.fn = ih_fault_handler}
#define F10_ F_, F_, F_, F_, F_, F_, F_, F_, F_, F_

__attribute__((section(".isr_vector"), used)) const ih_vector ih_vectors[16 + 82] = {
    {.sp = __ih_stack_top},
    {.fn = ih_reset_handler},
    F_, /* NMI */
    F_, /* HardFault */
    F_, /* MemManage */
    F_, /* BusFault */
    F_, /* UsageFault */
    {0}, {0}, {0}, {0},
    F_, /* SVCall */
    F_, /* DebugMonitor */
    {0},
    F_, /* PendSV */
    {.fn = ih_systick_handler},
    F10_, F10_, F10_, F10_, F10_, F10_, F10_, F10_, F_, F_, /* IRQ 0 .. 81 */
};
