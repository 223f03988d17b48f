/*
 * port_stm32f4.c - port.h on the STM32F405 (QEMU netduinoplus2 and real
 * boards), registers from stm32f4.h, memory map from stm32f4.ld.
 *
 * - Clock: the 16 MHz HSI the chip resets to (no PLL; QEMU does not model
 *   the RCC, so nothing here waits for an RCC ready flag).
 * - UART: USART1 (PA9 TX, PA10 RX, AF7), 115200 8N1, polled.
 * - NVM: the 64 KiB region at the top of the port's SRAM (linker script),
 *   written word by word (4 bytes). It survives a reset (QEMU's
 *   system_reset keeps SRAM) but not a real power loss: on a real battery-
 *   less board it stands in for the external SPI FRAM of the stm32f405
 *   profile, which needs a driver behind these same functions.
 * - Image: the PLAN region of flash (0x08080000), linked in or put there by
 *   QEMU's -device loader; port_image() is NULL when no "IHPL" image is there.
 * - Cycles: DWT CYCCNT; QEMU does not model the DWT (it reads 0), so the port
 *   falls back to SysTick (24 bits, extended by its wrap interrupt).
 * - Supply voltage: no ADC model under QEMU. port_supply_mv returns the
 *   ih_supply_mv global, which a debugger writes when it stops at
 *   port_supply_mv's entry (the emulated board: the modelled capacitor's
 *   voltage); it is in .bss, so 0 ("cannot measure": the rule never sleeps)
 *   after every reset. port_sleep_until_charged is an empty function the
 *   debugger stops at, to charge the modelled capacitor to turn-on.
 */
#include "port.h"

#include "image.h"
#include "le.h"
#include "port_stm32f4.h"
#include "stm32f4.h"

extern uint8_t __ih_plan_start[], __ih_plan_end[];
extern uint8_t __ih_input_start[], __ih_input_end[];
extern uint8_t __ih_nvm_start[], __ih_nvm_end[];

static uint8_t use_dwt;
static volatile uint32_t systick_wraps;

void ih_systick_handler(void) { systick_wraps++; }

static void uart_init(void)
{
    RCC_AHB1ENR |= RCC_AHB1ENR_GPIOAEN;
    RCC_APB2ENR |= RCC_APB2ENR_USART1EN;
    (void)RCC_APB2ENR; /* RM0090: a peripheral is accessible two cycles after its clock enable */
    GPIOA_MODER = (GPIOA_MODER & ~(0xFu << 18)) | (0xAu << 18);     /* PA9, PA10: alternate function */
    GPIOA_OSPEEDR = (GPIOA_OSPEEDR & ~(0xFu << 18)) | (0x5u << 18); /* medium speed */
    GPIOA_PUPDR = (GPIOA_PUPDR & ~(0xFu << 18)) | (0x1u << 20);     /* pull-up on RX */
    GPIOA_AFRH = (GPIOA_AFRH & ~(0xFFu << 4)) | (0x77u << 4);       /* AF7 = USART1 */
    USART1_CR1 = 0;
    USART1_CR2 = 0; /* 1 stop bit */
    USART1_CR3 = 0; /* no flow control */
    USART1_BRR = (IH_STM32_HCLK_HZ + IH_STM32_BAUD / 2u) / IH_STM32_BAUD; /* 139: oversampling by 16 */
    USART1_CR1 = USART_CR1_UE | USART_CR1_TE | USART_CR1_RE;              /* 8 data bits, no parity */
}

static void cycles_init(void)
{
    volatile uint32_t i;
    CoreDebug_DEMCR |= DEMCR_TRCENA;
    DWT_CYCCNT = 0;
    DWT_CTRL |= DWT_CTRL_CYCCNTENA;
    for (i = 0; i < 16u; i++) {
    }
    use_dwt = DWT_CYCCNT != 0;
    if (!use_dwt) {
        SYST_RVR = 0x00FFFFFFu;
        SYST_CVR = 0;
        SYST_CSR = SYST_CSR_ENABLE | SYST_CSR_TICKINT | SYST_CSR_CLKSOURCE;
        /* The write above cleared the counter, and its reload to RVR raises no
         * interrupt: until then port_cycles would read the end of a period
         * that no wrap follows (QEMU keeps 0 for a while), so wait for it. */
        for (i = 0; SYST_CVR == 0 && i < 1000000u; i++) {
        }
    }
}

void port_init(void)
{
    uart_init();
    cycles_init();
}

uint8_t *port_nvm(void) { return __ih_nvm_start; }

uint32_t port_nvm_bytes(void) { return (uint32_t)((uintptr_t)__ih_nvm_end - (uintptr_t)__ih_nvm_start); }

void port_nvm_write(uint32_t off, const void *src, uint32_t n)
{
    const uint8_t *s = src;
    volatile uint8_t *d;
    if (off > port_nvm_bytes() || n > port_nvm_bytes() - off) {
        return; /* the runtime never writes past the NVM it checked */
    }
    d = __ih_nvm_start + off;
    while (n > 0) {
        if (((uintptr_t)d & 3u) == 0 && n >= 4) {
            /* One aligned word: a single store. */
            *(volatile uint32_t *)(uintptr_t)d = ih_rd32(s);
            d += 4;
            s += 4;
            n -= 4;
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
    uint32_t region = (uint32_t)((uintptr_t)__ih_plan_end - (uintptr_t)__ih_plan_start), total;
    if (!port_image()) {
        return 0;
    }
    total = ih_rd32(__ih_plan_start + 8);
    return total < region ? total : region; /* a larger total: the image check refuses it */
}

uint32_t port_cycles(void)
{
    uint32_t hi, v;
    if (use_dwt) {
        return DWT_CYCCNT;
    }
    do {
        hi = systick_wraps;
        v = SYST_CVR;
    } while (hi != systick_wraps);
    return (hi << 24) | (0x00FFFFFFu - (v & 0x00FFFFFFu));
}

volatile uint16_t ih_supply_mv;

/* noinline and the barrier: a debugger stops at these functions' entries. */
IH_NOINLINE uint16_t port_supply_mv(void)
{
    IH_BARRIER();
    return ih_supply_mv;
}

IH_NOINLINE void port_sleep_until_charged(void) { IH_BARRIER(); }

int port_uart_getc(void)
{
    uint32_t sr = USART1_SR;
    if (sr & (USART_SR_RXNE | USART_SR_ORE)) {
        uint32_t dr = USART1_DR; /* reading SR then DR also clears an overrun */
        if (sr & USART_SR_RXNE) {
            return (int)(dr & 0xFFu);
        }
    }
    return -1;
}

void port_uart_write(const uint8_t *buf, uint32_t n)
{
    uint32_t i;
    for (i = 0; i < n; i++) {
        while (!(USART1_SR & USART_SR_TXE)) {
        }
        USART1_DR = buf[i];
    }
}

const uint8_t *stm32_input_region(uint32_t *bytes)
{
    *bytes = (uint32_t)((uintptr_t)__ih_input_end - (uintptr_t)__ih_input_start);
    return __ih_input_start;
}

void stm32_idle(void)
{
    for (;;) {
        __asm__ volatile("wfi");
    }
}

static void put_hex32(const char *name, uint32_t v)
{
    static const char digits[] = "0123456789abcdef";
    uint8_t b[9];
    int i;
    const char *p;
    for (p = name; *p; p++) {
        port_uart_write((const uint8_t *)p, 1);
    }
    b[0] = ' ';
    for (i = 0; i < 8; i++) {
        b[1 + i] = (uint8_t)digits[(v >> (28 - 4 * i)) & 15u];
    }
    port_uart_write(b, sizeof b);
}

void ih_fault_handler(void)
{
    put_hex32("ih fault cfsr", SCB_CFSR);
    put_hex32(" hfsr", SCB_HFSR);
    put_hex32(" bfar", SCB_BFAR);
    port_uart_write((const uint8_t *)"\r\n", 2);
    for (;;) {
    }
}
