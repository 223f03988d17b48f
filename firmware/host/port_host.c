/*
 * port_host.c - port.h on a POSIX host, for tests (see port_host.h).
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "port.h"
#include "port_host.h"

static uint8_t *nvm;
static uint32_t nvm_bytes;
static unsigned word = 4;

static uint8_t *image;
static uint32_t image_bytes;

static jmp_buf *cut_env;
static const uint64_t *cut_points;
static uint32_t cut_count, cut_next;
static uint64_t words, cut_single;

static uint16_t supply_mv = 3600;
static uint16_t (*supply_fn)(void);
static uint32_t sleeps;
static void (*sleep_fn)(void);

int host_nvm_setup(uint32_t bytes, unsigned word_bytes)
{
    free(nvm);
    nvm = calloc(bytes ? bytes : 1, 1);
    if (!nvm) {
        return -1;
    }
    nvm_bytes = bytes;
    word = word_bytes == 2 ? 2 : 4;
    return 0;
}

int host_image_load(const char *path)
{
    FILE *f = fopen(path, "rb");
    long n;
    if (!f) {
        return -1;
    }
    if (fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET) != 0 || (unsigned long)n > 0x7FFFFFFFul) {
        fclose(f);
        errno = EINVAL;
        return -1;
    }
    free(image);
    image = malloc(n ? (size_t)n : 1);
    if (!image || fread(image, 1, (size_t)n, f) != (size_t)n) {
        fclose(f);
        errno = EIO;
        return -1;
    }
    fclose(f);
    image_bytes = (uint32_t)n;
    return 0;
}

void host_image_set(const uint8_t *data, uint32_t bytes)
{
    free(image);
    image = malloc(bytes ? bytes : 1);
    if (image) {
        memcpy(image, data, bytes);
    }
    image_bytes = image ? bytes : 0;
}

void host_cut_reset(void)
{
    words = 0;
    cut_next = 0;
}

void host_cut_arm(jmp_buf *env, const uint64_t *points, uint32_t n)
{
    cut_env = env;
    cut_points = points;
    cut_count = n;
    cut_next = 0;
}

void host_cut_disarm(void)
{
    cut_env = NULL;
    cut_count = 0;
    cut_single = 0;
}

void host_cut_once(uint64_t point) { cut_single = point; }

uint64_t host_words_written(void) { return words; }

uint32_t host_cuts_fired(void) { return cut_next; }

void host_supply_set(uint16_t mv, uint16_t (*fn)(void))
{
    supply_mv = mv;
    supply_fn = fn;
}

uint32_t host_sleeps(void) { return sleeps; }

void host_sleep_hook(void (*fn)(void)) { sleep_fn = fn; }

void port_init(void) {}

uint8_t *port_nvm(void) { return nvm; }

uint32_t port_nvm_bytes(void) { return nvm_bytes; }

void port_nvm_write(uint32_t off, const void *src, uint32_t n)
{
    const uint8_t *s = src;
    uint32_t done = 0;
    if (off > nvm_bytes || n > nvm_bytes - off) {
        fprintf(stderr, "port_host: NVM write of %lu bytes at %lu past the %lu-byte NVM\n", (unsigned long)n,
                (unsigned long)off, (unsigned long)nvm_bytes);
        abort();
    }
    while (done < n) {
        uint32_t k = n - done < word ? n - done : word;
        if (cut_env && cut_single != 0 && words == cut_single) {
            cut_single = 0;
            longjmp(*cut_env, 2); /* the power fails before this word */
        }
        if (cut_env && cut_next < cut_count && words == cut_points[cut_next]) {
            cut_next++;
            longjmp(*cut_env, 1);
        }
        memcpy(nvm + off + done, s + done, k);
        done += k;
        words++;
    }
}

const uint8_t *port_image(void) { return image; }

uint32_t port_image_bytes(void) { return image_bytes; }

uint32_t port_cycles(void) { return (uint32_t)clock(); }

uint16_t port_supply_mv(void) { return supply_fn ? supply_fn() : supply_mv; }

void port_sleep_until_charged(void)
{
    sleeps++;
    if (sleep_fn) {
        sleep_fn();
    }
}

int port_uart_getc(void) { return -1; }

void port_uart_write(const uint8_t *buf, uint32_t n) { fwrite(buf, 1, n, stderr); }
