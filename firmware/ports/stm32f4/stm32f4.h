/*
 * stm32f4.h - the STM32F405 registers and memory map this port uses,
 * written by hand from ST's reference manual RM0090 (RCC, GPIO, USART
 * register maps) and ARM's ARMv7-M Architecture Reference Manual (SysTick,
 * SCB, DWT, CoreDebug). No CMSIS or vendor code.
 */
#ifndef IH_STM32F4_H
#define IH_STM32F4_H

#include <stdint.h>

#define IH_REG32(addr) (*(volatile uint32_t *)(uintptr_t)(addr))

/* RCC (RM0090 7.3): clock enables. The reset clock is the 16 MHz HSI,
 * which this port keeps (profile stm32f405: 16 MHz, PLL off). */
#define RCC_BASE 0x40023800u
#define RCC_AHB1ENR IH_REG32(RCC_BASE + 0x30u)
#define RCC_APB2ENR IH_REG32(RCC_BASE + 0x44u)
#define RCC_AHB1ENR_GPIOAEN (1u << 0)
#define RCC_APB2ENR_USART1EN (1u << 4)

/* GPIOA (RM0090 8.4): PA9 = USART1_TX, PA10 = USART1_RX, alternate function 7. */
#define GPIOA_BASE 0x40020000u
#define GPIOA_MODER IH_REG32(GPIOA_BASE + 0x00u)
#define GPIOA_OSPEEDR IH_REG32(GPIOA_BASE + 0x08u)
#define GPIOA_PUPDR IH_REG32(GPIOA_BASE + 0x0Cu)
#define GPIOA_AFRH IH_REG32(GPIOA_BASE + 0x24u)

/* USART1 (RM0090 30.6) on APB2. */
#define USART1_BASE 0x40011000u
#define USART1_SR IH_REG32(USART1_BASE + 0x00u)
#define USART1_DR IH_REG32(USART1_BASE + 0x04u)
#define USART1_BRR IH_REG32(USART1_BASE + 0x08u)
#define USART1_CR1 IH_REG32(USART1_BASE + 0x0Cu)
#define USART1_CR2 IH_REG32(USART1_BASE + 0x10u)
#define USART1_CR3 IH_REG32(USART1_BASE + 0x14u)
#define USART_SR_ORE (1u << 3)
#define USART_SR_RXNE (1u << 5)
#define USART_SR_TC (1u << 6)
#define USART_SR_TXE (1u << 7)
#define USART_CR1_RE (1u << 2)
#define USART_CR1_TE (1u << 3)
#define USART_CR1_UE (1u << 13)

/* Clocks: HSI after reset; APB2 undivided. */
#define IH_STM32_HCLK_HZ 16000000u
#define IH_STM32_BAUD 115200u

/* Cortex-M4 system control space (ARMv7-M ARM B3.2, C1.6). */
#define SCB_SCR IH_REG32(0xE000ED10u)
#define SCB_SHCSR IH_REG32(0xE000ED24u)
#define SCB_CFSR IH_REG32(0xE000ED28u)
#define SCB_HFSR IH_REG32(0xE000ED2Cu)
#define SCB_BFAR IH_REG32(0xE000ED38u)
#define CoreDebug_DEMCR IH_REG32(0xE000EDFCu)
#define DEMCR_TRCENA (1u << 24)

/* SysTick (ARMv7-M ARM B3.3): 24-bit down counter. */
#define SYST_CSR IH_REG32(0xE000E010u)
#define SYST_RVR IH_REG32(0xE000E014u)
#define SYST_CVR IH_REG32(0xE000E018u)
#define SYST_CSR_ENABLE (1u << 0)
#define SYST_CSR_TICKINT (1u << 1)
#define SYST_CSR_CLKSOURCE (1u << 2) /* the processor clock */

/* DWT (ARMv7-M ARM C1.8): the cycle counter. QEMU does not model it (its
 * registers read as zero there): the port then counts with SysTick. */
#define DWT_CTRL IH_REG32(0xE0001000u)
#define DWT_CYCCNT IH_REG32(0xE0001004u)
#define DWT_CTRL_CYCCNTENA (1u << 0)

#endif
