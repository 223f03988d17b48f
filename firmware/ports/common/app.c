/*
 * app.c - the firmware's main loop over the runtime and the port (app.h).
 *
 * Every event is reported by app_event, one line of text on the UART:
 *
 *   ih boot plan 1a2b3c4d tasks 10 progress 3   a power-up (progress: the NVM
 *                                               progress word; "-" when none)
 *   ih load 1728                                the deployed input was written to NVM
 *   ih commit 4 early                           the run-time rule committed early
 *   ih task 3 cycles 123456                     task 3 ran (its cycles, port_cycles)
 *   ih commit 4                                 the progress word is now 4
 *   ih result 0a0bf3... cycles 2345678          the output tensor in hex, and the
 *                                               cycles since the inference started
 *                                               (or resumed) in this power cycle
 *   ih idle                                     nothing to run
 *   ih error -13 task larger than the SRAM buffer
 *
 * The wire protocol (firmware/PROTOCOL.md) replaces app_event and nothing
 * else here.
 */
#include "app.h"

#include "image.h"
#include "le.h"
#include "port.h"

enum { EV_BOOT, EV_LOAD, EV_TASK, EV_COMMIT, EV_RESULT, EV_IDLE, EV_ERROR };

static void put(const char *s)
{
    uint32_t n = 0;
    while (s[n]) {
        n++;
    }
    port_uart_write((const uint8_t *)s, n);
}

static void put_dec(uint32_t v)
{
    uint8_t b[10];
    unsigned i = sizeof b;
    do {
        b[--i] = (uint8_t)('0' + (uint8_t)(v % 10u));
        v /= 10u;
    } while (v != 0);
    port_uart_write(b + i, (uint32_t)(sizeof b - i));
}

static void put_hex(const uint8_t *d, uint32_t n)
{
    static const char digits[] = "0123456789abcdef";
    uint8_t b[32];
    unsigned k = 0;
    uint32_t i;
    for (i = 0; i < n; i++) {
        b[k++] = (uint8_t)digits[d[i] >> 4];
        b[k++] = (uint8_t)digits[d[i] & 15u];
        if (k == sizeof b) {
            port_uart_write(b, k);
            k = 0;
        }
    }
    if (k) {
        port_uart_write(b, k);
    }
}

/* The one function that reports events (see the top of this file). */
static void app_event(int ev, uint32_t a, uint32_t b, uint32_t c, const uint8_t *data, uint32_t n)
{
    uint8_t tag[4];
    put("ih ");
    switch (ev) {
    case EV_BOOT:
        tag[0] = (uint8_t)(a >> 24);
        tag[1] = (uint8_t)(a >> 16);
        tag[2] = (uint8_t)(a >> 8);
        tag[3] = (uint8_t)a;
        put("boot plan ");
        put_hex(tag, 4);
        put(" tasks ");
        put_dec(b);
        put(" progress ");
        if (c == 0xFFFFFFFFu) {
            put("-");
        } else {
            put_dec(c);
        }
        break;
    case EV_LOAD:
        put("load ");
        put_dec(a);
        break;
    case EV_TASK:
        put("task ");
        put_dec(a);
        put(" cycles ");
        put_dec(b);
        break;
    case EV_COMMIT:
        put("commit ");
        put_dec(a);
        if (b) {
            put(" early");
        }
        break;
    case EV_RESULT:
        put("result ");
        put_hex(data, n);
        put(" cycles ");
        put_dec(a);
        break;
    case EV_IDLE:
        put("idle");
        break;
    default:
        put("error -");
        put_dec(0u - a);
        put(" ");
        put(ih_strerror((int)ih_i32(a)));
        break;
    }
    put("\r\n");
}

const uint8_t *app_input(const uint8_t *input_region, uint32_t region_bytes, uint32_t *bytes)
{
    uint32_t n;
    *bytes = 0;
    if (!input_region || region_bytes < IH_INPUT_HEADER_BYTES || ih_rd32(input_region) != IH_INPUT_MAGIC) {
        return 0;
    }
    n = ih_rd32(input_region + 4);
    if (n == 0 || n > region_bytes - IH_INPUT_HEADER_BYTES) {
        return 0;
    }
    *bytes = n;
    return input_region + IH_INPUT_HEADER_BYTES;
}

static int fail(int err)
{
    app_event(EV_ERROR, (uint32_t)err, 0, 0, 0, 0);
    return err;
}

int app_main(const ih_config *cfg, const uint8_t *input_region, uint32_t region_bytes)
{
    const ih_rt_stats *st = ih_rt_get_stats();
    const uint8_t *in;
    uint32_t start, t, in_bytes, task, commits, early;
    int r, ran = 0, loaded = 0;

    r = ih_rt_boot(cfg);
    if (r != IH_OK) {
        return fail(r);
    }
    app_event(EV_BOOT, ih_rt_image()->plan_tag, ih_rt_tasks(), ih_rt_progress(), 0, 0);
    start = port_cycles();
    for (;;) {
        commits = st->commits;
        early = st->early_commits;
        task = ih_rt_next();
        t = port_cycles();
        r = ih_rt_step();
        if (r == IH_RT_RAN) {
            t = port_cycles() - t;
            ran = 1;
            if (st->early_commits != early) {
                app_event(EV_COMMIT, task, 1, 0, 0, 0); /* before the task ran */
            }
            app_event(EV_TASK, task, t, 0, 0, 0);
            if (st->commits != commits) {
                app_event(EV_COMMIT, ih_rt_progress(), 0, 0, 0, 0);
            }
            continue;
        }
        if (r == IH_RT_DONE && (ran || loaded)) {
            uint32_t n;
            const uint8_t *out = ih_rt_output(&n);
            app_event(EV_RESULT, port_cycles() - start, 0, 0, out, n);
            return r;
        }
        if ((r == IH_RT_DONE || r == IH_RT_IDLE) && !loaded) {
            /* No inference to resume: start one on the deployed input. */
            in = app_input(input_region, region_bytes, &in_bytes);
            if (!in) {
                break;
            }
            r = ih_rt_load_input(in, in_bytes);
            if (r != IH_OK) {
                return fail(r);
            }
            loaded = 1;
            app_event(EV_LOAD, in_bytes, 0, 0, 0, 0);
            start = port_cycles();
            continue;
        }
        if (r < 0) {
            return fail(r);
        }
        break;
    }
    app_event(EV_IDLE, 0, 0, 0, 0, 0);
    return IH_RT_IDLE;
}
