/*
 * main.c - the STM32F405 firmware: at every power-up (reset) bring up the
 * board, boot the runtime, resume the inference in NVM or start one on the
 * deployed input, run it and report it on USART1 (ports/common/app.c),
 * then wait for the next reset.
 */
#include "app.h"
#include "port.h"
#include "port_stm32f4.h"

int main(void)
{
    ih_config cfg;
    const uint8_t *input;
    uint32_t input_bytes;
    port_init();
    stm32_config(&cfg);
    input = stm32_input_region(&input_bytes);
    (void)app_main(&cfg, input, input_bytes);
    stm32_idle();
}
