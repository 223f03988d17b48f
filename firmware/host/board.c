/*
 * board - the firmware's wire-protocol main loop (ports/common/app.c, built
 * with IH_APP_WIRE) on the host port, with the UART on stdin/stdout or on a
 * terminal, so that the harness drives it with harness/link like a board.
 *
 *   board [--tty PATH] [--brownout-every N] [--nvm BYTES] [--word 2|4]
 *         [--image-cap BYTES] [--name NAME]
 *
 *   --tty PATH           the UART is PATH (e.g. a pty slave, put in raw
 *                        mode) instead of stdin/stdout
 *   --brownout-every N   the power fails before every N-th NVM word written
 *                        (counted from the last power-up): SRAM is lost (the
 *                        runtime's state poisoned, app.c's state
 *                        reinitialized), NVM and the image area are kept, the
 *                        board boots again and sends BOOT (reason POWER_ON)
 *   --nvm BYTES          NVM region size (default 262144), erased to zero
 *   --word 2|4           NVM word bytes (default 2, the MSP430's)
 *   --image-cap BYTES    capacity of the image area, a RAM buffer (default 262144)
 *   --name NAME          the profile name IDENTITY reports (default msp430fr5994)
 *
 * The boot count and the image-valid flag (the board's own NVM, PROTOCOL.md
 * section 9) live here in a struct that a simulated brown-out keeps. The
 * program runs until its UART reaches end of file or fails (exit 0), or a
 * usage error (exit 1). Statistics go to stderr at exit.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "app.h"
#include "port.h"
#include "port_host.h"
#include "wire.h"

static int uart_in = 0, uart_out = 1;
static jmp_buf brownout;
static struct app_persist persist;
static uint8_t *image_area;
static uint64_t brownout_every;
static unsigned long brownouts;

static void finish(void)
{
    fprintf(stderr, "board: boots %lu brownouts %lu words %llu\n", (unsigned long)persist.boots, brownouts,
            (unsigned long long)host_words_written());
    exit(0);
}

/* The UART (app.c uses these: -DAPP_UART_GETC=board_uart_getc ...). */
int board_uart_getc(void);
void board_uart_write(const uint8_t *buf, uint32_t n);

int board_uart_getc(void)
{
    struct pollfd p;
    uint8_t b;
    ssize_t r;
    p.fd = uart_in;
    p.events = POLLIN;
    p.revents = 0;
    if (poll(&p, 1, 0) <= 0 || !(p.revents & (POLLIN | POLLHUP | POLLERR))) {
        return -1;
    }
    r = read(uart_in, &b, 1);
    if (r == 1) {
        return b;
    }
    if (r < 0 && (errno == EAGAIN || errno == EINTR)) {
        return -1;
    }
    finish(); /* end of file, or the line is gone */
    return -1;
}

void board_uart_write(const uint8_t *buf, uint32_t n)
{
    while (n > 0) {
        ssize_t w = write(uart_out, buf, n);
        if (w < 0) {
            if (errno == EINTR || errno == EAGAIN) {
                continue;
            }
            finish();
        }
        buf += w;
        n -= (uint32_t)w;
    }
}

/* Nothing to do: wait for the next byte (up to 50 ms). */
static void idle(void)
{
    struct pollfd p;
    p.fd = uart_in;
    p.events = POLLIN;
    p.revents = 0;
    (void)poll(&p, 1, 50);
}

static void image_committed(uint32_t len)
{
    host_image_set(image_area, len);
}

static void usage(void)
{
    fprintf(stderr, "usage: board [--tty PATH] [--brownout-every N] [--nvm BYTES] [--word 2|4] [--image-cap BYTES] [--name NAME]\n");
    exit(1);
}

static void make_raw(int fd)
{
    struct termios t;
    if (tcgetattr(fd, &t) != 0) {
        return; /* not a terminal */
    }
    t.c_iflag &= ~(tcflag_t)(IGNBRK | BRKINT | PARMRK | ISTRIP | INLCR | IGNCR | ICRNL | IXON);
    t.c_oflag &= ~(tcflag_t)OPOST;
    t.c_lflag &= ~(tcflag_t)(ECHO | ECHONL | ICANON | ISIG | IEXTEN);
    t.c_cflag &= ~(tcflag_t)(CSIZE | PARENB);
    t.c_cflag |= CS8;
    t.c_cc[VMIN] = 1;
    t.c_cc[VTIME] = 0;
    (void)tcsetattr(fd, TCSANOW, &t);
}

int main(int argc, char **argv)
{
    /* static: main's state must survive the longjmp */
    static const char *tty, *name = "msp430fr5994";
    static uint32_t nvm_bytes = 262144, image_cap = 262144;
    static unsigned word = 2;
    static struct app_wire_config wc;
    static int a;

    for (a = 1; a < argc; a++) {
        if (strcmp(argv[a], "--tty") == 0 && a + 1 < argc) {
            tty = argv[++a];
        } else if (strcmp(argv[a], "--brownout-every") == 0 && a + 1 < argc) {
            brownout_every = strtoull(argv[++a], NULL, 10);
        } else if (strcmp(argv[a], "--nvm") == 0 && a + 1 < argc) {
            nvm_bytes = (uint32_t)strtoul(argv[++a], NULL, 10);
        } else if (strcmp(argv[a], "--word") == 0 && a + 1 < argc) {
            word = (unsigned)strtoul(argv[++a], NULL, 10);
        } else if (strcmp(argv[a], "--image-cap") == 0 && a + 1 < argc) {
            image_cap = (uint32_t)strtoul(argv[++a], NULL, 10);
        } else if (strcmp(argv[a], "--name") == 0 && a + 1 < argc) {
            name = argv[++a];
        } else {
            usage();
        }
    }
    if ((word != 2 && word != 4) || nvm_bytes < 16 || image_cap == 0) {
        usage();
    }
    if (tty) {
        int fd = open(tty, O_RDWR | O_NOCTTY);
        if (fd < 0) {
            fprintf(stderr, "board: %s: %s\n", tty, strerror(errno));
            return 1;
        }
        uart_in = uart_out = fd;
    }
    make_raw(uart_in);
    if (host_nvm_setup(nvm_bytes, word) != 0 || !(image_area = calloc(image_cap, 1))) {
        fprintf(stderr, "board: out of memory\n");
        return 1;
    }
    wc.cfg = NULL;
    wc.persist = &persist;
    wc.image_area = image_area;
    wc.image_cap = image_cap;
    wc.image_committed = image_committed;
    wc.boot_reason = WIRE_BOOT_POWER_ON;
    wc.name = name;
    wc.idle = idle;

    host_cut_reset();
    if (setjmp(brownout) != 0) {
        /* The power failed: SRAM is lost. */
        brownouts++;
        ih_rt_poison();
    }
    if (brownout_every > 0) {
        host_cut_arm(&brownout, NULL, 0);
        host_cut_once(host_words_written() + brownout_every);
    }
    (void)app_wire_main(&wc);
    finish();
    return 0;
}
