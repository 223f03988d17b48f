/*
 * port_host.h - the host port's controls for tests: NVM as a byte array,
 * the image from a file, brown-outs injected by cutting port_nvm_write after
 * a given number of NVM words (a longjmp back to the boot loop), and a
 * supply voltage that is "always enough" unless a test sets it.
 */
#ifndef IH_PORT_HOST_H
#define IH_PORT_HOST_H

#include <setjmp.h>
#include <stdint.h>

/* NVM of the given size, erased to zero; word_bytes is the atomic write
 * unit (2 or 4). Returns 0 on success. */
int host_nvm_setup(uint32_t bytes, unsigned word_bytes);

/* Reads the plan image from a file (kept for port_image). Returns 0 on
 * success, -1 with errno set. */
int host_image_load(const char *path);
void host_image_set(const uint8_t *data, uint32_t bytes);

/* Brown-out injection. Words are counted over every port_nvm_write since
 * host_cut_reset: a write of n bytes is ceil(n / word_bytes) words, applied
 * one at a time. When the count reaches the next cut point, that word is
 * not written and the port longjmps to *env with 1. Cut points are strictly
 * increasing word counts. */
void host_cut_reset(void);
void host_cut_arm(jmp_buf *env, const uint64_t *points, uint32_t n);
void host_cut_disarm(void);
/* One more cut, besides the list: at word count point (0: none). It fires
 * once, also longjmping to the armed env. */
void host_cut_once(uint64_t point);
uint64_t host_words_written(void);
uint32_t host_cuts_fired(void);

/* The supply: port_supply_mv returns fn() when set, else mv (3600 by
 * default: always enough). */
void host_supply_set(uint16_t mv, uint16_t (*fn)(void));
uint32_t host_sleeps(void);
/* fn (when set) is called at every port_sleep_until_charged. */
void host_sleep_hook(void (*fn)(void));

#endif
