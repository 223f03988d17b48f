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
 * Built with -DIH_APP_WIRE, app_event sends the events as frames of the
 * wire protocol (firmware/PROTOCOL.md) instead, and app_wire_main (the end
 * of this file) serves the protocol's commands: HELLO, DEPLOY_CHUNK and
 * DEPLOY_COMMIT (into the port's writable image area, if it has one; else
 * ACK FAILED), SET_INPUT, START (de-duplicated by the started inference
 * number, NVM header bytes 12..15), READ_OUTPUT, READ_NVM, RESET_COUNTERS,
 * with the de-duplication history of wire.h, and runs the inference task by
 * task between commands. The text log and app_main are the build without
 * IH_APP_WIRE.
 */
#include "app.h"

#include "image.h"
#include "le.h"
#include "port.h"

enum { EV_BOOT, EV_LOAD, EV_TASK, EV_COMMIT, EV_RESULT, EV_IDLE, EV_ERROR };

#ifndef IH_APP_WIRE
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

#endif

#ifdef IH_APP_WIRE
#include "wire.h"

/* The UART of the protocol: port.h's, unless the build names others (the
 * host's board program: -DAPP_UART_GETC=board_uart_getc ...). */
#ifndef APP_UART_GETC
#define APP_UART_GETC port_uart_getc
#endif
#ifndef APP_UART_WRITE
#define APP_UART_WRITE port_uart_write
#endif
int APP_UART_GETC(void);
void APP_UART_WRITE(const uint8_t *buf, uint32_t n);

static uint16_t ev_seq; /* the event sequence: SRAM, starts over at every boot */

/* The one function that reports events, as wire frames (PROTOCOL.md
 * section 5). Arguments by event: EV_BOOT a boots, b resume, c reason |
 * flags << 8 (event 0, starts the sequence; its cycles are port_cycles()
 * now: the boot's cost since the port started its counter); EV_TASK a task, b cycles;
 * EV_COMMIT a progress, b kind; EV_RESULT a inference, data/n the output
 * tensor; EV_ERROR a the error (a LOG of level 0). EV_LOAD and EV_IDLE send
 * nothing. */
static void app_event(int ev, uint32_t a, uint32_t b, uint32_t c, const uint8_t *data, uint32_t n)
{
    struct wire_msg m;
    const char *text;
    uint16_t len = 0;
    uint8_t *z = (uint8_t *)&m;
    uint32_t i;
    for (i = 0; i < sizeof m; i++) {
        z[i] = 0;
    }
    switch (ev) {
    case EV_BOOT:
        ev_seq = 0;
        m.type = WIRE_BOOT;
        m.u.boot.boots = a;
        m.u.boot.resume = b;
        m.u.boot.reason = (uint8_t)c;
        m.u.boot.flags = (uint8_t)(c >> 8);
        m.u.boot.cycles = port_cycles();
        break;
    case EV_TASK:
        m.type = WIRE_TASK_DONE;
        m.u.task_done.task = a;
        m.u.task_done.cycles = b;
        break;
    case EV_COMMIT:
        m.type = WIRE_COMMIT;
        m.u.commit.progress = a;
        m.u.commit.kind = (uint8_t)b;
        break;
    case EV_RESULT:
        m.type = WIRE_RESULT;
        m.u.result.inference = a;
        m.u.result.length = n;
        m.u.result.crc = wire_crc32(0, data, n);
        break;
    case EV_ERROR:
        m.type = WIRE_LOG;
        m.u.log.level = 0;
        text = ih_strerror((int)ih_i32(a));
        while (text[len] && len < WIRE_MAX_TEXT) {
            len++;
        }
        m.u.log.text = (const uint8_t *)text;
        m.u.log.len = len;
        break;
    default:
        return;
    }
    (void)c;
    m.version = WIRE_VERSION;
    m.seq = ev_seq++;
    (void)wire_send(&m, APP_UART_WRITE);
}
#else
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
#endif

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

#ifndef IH_APP_WIRE
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
#endif

#ifdef IH_APP_WIRE
/* ------------------------------------------------------------------------
 * The wire protocol main loop (app_wire_main, app.h).
 */
#define APP_FW_VERSION 0x00010000u
#define APP_NVM_STARTED_OFFSET 12u /* NVM header bytes 12..15: the started inference (FORMAT.md) */

static struct wire_rx rx;
static struct wire_history hist;
static const struct app_wire_config *wcfg;
static uint8_t booted;  /* ih_rt_boot accepted the image */
static uint8_t running; /* an inference is in progress */
static uint8_t deploying; /* a DEPLOY_CHUNK arrived since the last commit */

static uint32_t started_inference(void)
{
    return ih_rd32(port_nvm() + APP_NVM_STARTED_OFFSET);
}

static void answer_ack(uint16_t seq, uint8_t cmd, uint8_t status, uint32_t detail)
{
    struct wire_msg m;
    m.version = WIRE_VERSION;
    m.type = WIRE_ACK;
    m.seq = seq;
    m.u.ack.status = status;
    m.u.ack.cmd = cmd;
    m.u.ack.detail = detail;
    (void)wire_send(&m, APP_UART_WRITE);
}

static void answer_identity(uint16_t seq)
{
    struct wire_msg m;
    const char *name = wcfg->name ? wcfg->name : "";
    unsigned i;
    m.version = WIRE_VERSION;
    m.type = WIRE_IDENTITY;
    m.seq = seq;
    m.u.identity.fw = APP_FW_VERSION;
    m.u.identity.nvm = port_nvm_bytes();
    m.u.identity.image = wcfg->image_area ? wcfg->image_cap : port_image_bytes();
    m.u.identity.boots = wcfg->persist->boots;
    m.u.identity.rx_errors = rx.errors;
    m.u.identity.window = WIRE_WINDOW;
    m.u.identity.flags = wcfg->persist->image_valid ? WIRE_IDENTITY_IMAGE_VALID : 0;
    for (i = 0; i < WIRE_NAME_LEN && name[i]; i++) {
        m.u.identity.name[i] = name[i];
    }
    for (; i <= WIRE_NAME_LEN; i++) {
        m.u.identity.name[i] = 0;
    }
    (void)wire_send(&m, APP_UART_WRITE);
}

static void answer_data(uint16_t seq, uint32_t off, const uint8_t *p, uint16_t n)
{
    struct wire_msg m;
    m.version = WIRE_VERSION;
    m.type = WIRE_DATA;
    m.seq = seq;
    m.u.chunk.offset = off;
    m.u.chunk.data = p;
    m.u.chunk.len = n;
    (void)wire_send(&m, APP_UART_WRITE);
}

/* (Re)boots the runtime on the image in the image area. */
static void rt_boot(void)
{
    int r;
    booted = 0;
    running = 0;
    if (!wcfg->persist->image_valid || !port_image()) {
        return;
    }
    r = ih_rt_boot(wcfg->cfg);
    if (r != IH_OK) {
        app_event(EV_ERROR, (uint32_t)r, 0, 0, 0, 0);
        return;
    }
    booted = 1;
    running = ih_rt_progress() < ih_rt_tasks() && ih_rd32(port_nvm() + IH_NVM_MAGIC_OFFSET) == IH_NVM_MAGIC &&
              ih_rd32(port_nvm() + IH_NVM_TAG_OFFSET) == ih_rt_image()->plan_tag;
}

/* Executes one command; returns the ACK's status (detail in *detail) or
 * 0xFF when the command answered with IDENTITY or DATA itself. */
static uint8_t execute(const struct wire_msg *m, uint32_t *detail)
{
    struct app_persist *ps = wcfg->persist;
    *detail = 0;
    switch (m->type) {
    case WIRE_HELLO:
        answer_identity(m->seq);
        return 0xFF;
    case WIRE_DEPLOY_CHUNK: {
        uint32_t i;
        if (!wcfg->image_area) {
            *detail = 1;
            return WIRE_FAILED; /* read-only image (flash) on this port */
        }
        if (running) {
            return WIRE_BUSY;
        }
        if (m->u.chunk.offset > wcfg->image_cap || m->u.chunk.len > wcfg->image_cap - m->u.chunk.offset) {
            *detail = wcfg->image_cap;
            return WIRE_BAD_RANGE;
        }
        if (!deploying) {
            ps->image_valid = 0; /* invalid until DEPLOY_COMMIT */
            booted = 0;
            deploying = 1;
        }
        for (i = 0; i < m->u.chunk.len; i++) {
            wcfg->image_area[m->u.chunk.offset + i] = m->u.chunk.data[i];
        }
        return WIRE_OK;
    }
    case WIRE_DEPLOY_COMMIT: {
        uint32_t crc;
        if (!wcfg->image_area) {
            *detail = 1;
            return WIRE_FAILED;
        }
        if (running) {
            return WIRE_BUSY;
        }
        if (m->u.commit_req.length > wcfg->image_cap) {
            *detail = wcfg->image_cap;
            return WIRE_BAD_RANGE;
        }
        crc = wire_crc32(0, wcfg->image_area, m->u.commit_req.length);
        if (crc != m->u.commit_req.crc) {
            *detail = crc;
            return WIRE_BAD_CRC;
        }
        ps->image_len = m->u.commit_req.length;
        if (wcfg->image_committed) {
            wcfg->image_committed(ps->image_len);
        }
        ps->image_valid = 1;
        deploying = 0;
        {
            /* a new image starts a new series of inference numbers */
            static const uint8_t none[4] = {0, 0, 0, 0};
            port_nvm_write(APP_NVM_STARTED_OFFSET, none, 4);
        }
        rt_boot();
        if (!booted) {
            ps->image_valid = 0;
            *detail = 2;
            return WIRE_FAILED; /* the runtime refused the image */
        }
        return WIRE_OK;
    }
    case WIRE_SET_INPUT: {
        uint32_t in_bytes;
        if (!booted) {
            return WIRE_NO_IMAGE;
        }
        if (running) {
            return WIRE_BUSY;
        }
        in_bytes = ih_rt_input_bytes();
        if (m->u.chunk.offset > in_bytes || m->u.chunk.len > in_bytes - m->u.chunk.offset) {
            *detail = in_bytes;
            return WIRE_BAD_RANGE;
        }
        (void)ih_rt_load_begin(); /* no inference resumes on a half-written input */
        (void)ih_rt_load_chunk(m->u.chunk.offset, m->u.chunk.data, m->u.chunk.len);
        return WIRE_OK;
    }
    case WIRE_START: {
        uint8_t num[4];
        if (!booted) {
            return WIRE_NO_IMAGE;
        }
        if (started_inference() == m->u.start.inference) {
            return WIRE_OK; /* started already (a retransmission): not again */
        }
        /* progress 0 first, then the number: a power failure between the
         * two leaves a START that is executed again, never one lost */
        (void)ih_rt_load_end();
        ih_wr32(num, m->u.start.inference);
        port_nvm_write(APP_NVM_STARTED_OFFSET, num, 4);
        running = 1;
        return WIRE_OK;
    }
    case WIRE_READ_OUTPUT: {
        uint32_t n = 0;
        const uint8_t *out = booted ? ih_rt_output(&n) : 0;
        if (!out) {
            n = 0;
        }
        if (m->u.read.offset > n || m->u.read.length > n - m->u.read.offset) {
            *detail = n;
            return WIRE_BAD_RANGE;
        }
        answer_data(m->seq, m->u.read.offset, out + m->u.read.offset, m->u.read.length);
        return 0xFF;
    }
    case WIRE_READ_NVM: {
        uint32_t n = port_nvm_bytes();
        if (m->u.read.offset > n || m->u.read.length > n - m->u.read.offset) {
            *detail = n;
            return WIRE_BAD_RANGE;
        }
        answer_data(m->seq, m->u.read.offset, port_nvm() + m->u.read.offset, m->u.read.length);
        return 0xFF;
    }
    case WIRE_RESET_COUNTERS:
        ps->boots = 0;
        rx.errors = 0;
        return WIRE_OK;
    default:
        return WIRE_UNKNOWN_TYPE;
    }
}

static void serve(const uint8_t *frame, uint16_t n)
{
    struct wire_msg m;
    const struct wire_hist_entry *h;
    uint32_t detail = 0;
    uint8_t status;
    int e = wire_parse(frame, n, &m);
    if (n < WIRE_MIN_FRAME) {
        return;
    }
    if (frame[1] == 0 || frame[1] >= WIRE_ACK) {
        return; /* responses, events, type 0: never answered */
    }
    if (e == WIRE_E_VERSION || frame[0] != WIRE_VERSION) {
        answer_ack((uint16_t)(frame[2] | (frame[3] << 8)), frame[1], WIRE_UNSUPPORTED_VERSION, WIRE_VERSION);
        return;
    }
    if (e == WIRE_E_TYPE) {
        answer_ack(m.seq, frame[1], WIRE_UNKNOWN_TYPE, 0);
        return;
    }
    if (e == WIRE_E_LENGTH || e == WIRE_E_FIELD) {
        answer_ack((uint16_t)(frame[2] | (frame[3] << 8)), frame[1], WIRE_BAD_LENGTH, 0);
        return;
    }
    if (e != 0) {
        return;
    }
    if (m.type == WIRE_HELLO) {
        wire_history_clear(&hist);
    } else if ((h = wire_history_find(&hist, frame, n)) != 0 && h->type == m.type) {
        if (m.type == WIRE_READ_OUTPUT || m.type == WIRE_READ_NVM) {
            (void)execute(&m, &detail); /* reads are simply answered again */
        } else {
            answer_ack(m.seq, m.type, h->status, h->detail);
        }
        return;
    }
    status = execute(&m, &detail);
    if (status != 0xFF) {
        answer_ack(m.seq, m.type, status, detail);
    }
    if (m.type != WIRE_HELLO) {
        wire_history_put(&hist, frame, n, status == 0xFF ? WIRE_OK : status, detail);
    }
}

int app_wire_main(const struct app_wire_config *wc)
{
    const ih_rt_stats *st = ih_rt_get_stats();
    uint32_t flags = 0, resume = 0, t, task, commits, early;
    int r;

    wcfg = wc;
    wire_rx_init(&rx);
    wire_history_clear(&hist);
    deploying = 0;
    wc->persist->boots++;
    rt_boot();
    if (booted) {
        resume = ih_rt_progress();
        if (ih_rd32(port_nvm() + IH_NVM_MAGIC_OFFSET) == IH_NVM_MAGIC &&
            ih_rd32(port_nvm() + IH_NVM_TAG_OFFSET) == ih_rt_image()->plan_tag) {
            flags |= WIRE_BOOT_NVM_VALID;
        }
    }
    if (wc->persist->image_valid) {
        flags |= WIRE_BOOT_IMAGE_VALID;
    }
    if (running) {
        flags |= WIRE_BOOT_RUNNING;
    }
    app_event(EV_BOOT, wc->persist->boots, resume, (uint32_t)wc->boot_reason | (flags << 8), 0, 0);
    for (;;) {
        int rr = wire_rx_poll(&rx, APP_UART_GETC);
        if (rr == WIRE_RX_FRAME) {
            serve(rx.frame, rx.frame_len);
            continue;
        }
        if (rr != WIRE_RX_NONE) {
            continue; /* a dropped frame: counted in rx.errors */
        }
        if (!running) {
            if (wc->idle) {
                wc->idle(); /* nothing to do: the port may wait for a byte */
            }
            continue;
        }
        commits = st->commits;
        early = st->early_commits;
        task = ih_rt_next();
        t = port_cycles();
        r = ih_rt_step();
        if (r == IH_RT_RAN) {
            t = port_cycles() - t;
            if (st->early_commits != early) {
                app_event(EV_COMMIT, task, WIRE_COMMIT_EARLY, 0, 0, 0);
            }
            app_event(EV_TASK, task, t, 0, 0, 0);
            if (st->commits != commits) {
                app_event(EV_COMMIT, ih_rt_progress(), WIRE_COMMIT_TASK, 0, 0, 0);
            }
            continue;
        }
        running = 0;
        if (r == IH_RT_DONE) {
            uint32_t n;
            const uint8_t *out = ih_rt_output(&n);
            app_event(EV_RESULT, started_inference(), 0, 0, out, n);
        } else if (r < 0) {
            app_event(EV_ERROR, (uint32_t)r, 0, 0, 0, 0);
        }
    }
}
#endif
