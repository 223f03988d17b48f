/*
 * wire.c - the board side of the wire protocol (see wire.h, PROTOCOL.md).
 * C99, freestanding: no heap, no libc calls; every length fits 16 bits.
 */
#include "wire.h"

/* ---- CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320, as zlib) ----
 * A 16-entry table (64 bytes of flash), two lookups per byte. */
static const uint32_t crc_nibble[16] = {
    0x00000000UL, 0x1DB71064UL, 0x3B6E20C8UL, 0x26D930ACUL,
    0x76DC4190UL, 0x6B6B51F4UL, 0x4DB26158UL, 0x5005713CUL,
    0xEDB88320UL, 0xF00F9344UL, 0xD6D6A3E8UL, 0xCB61B38CUL,
    0x9B64C2B0UL, 0x86D3D2D4UL, 0xA00AE278UL, 0xBDBDF21CUL
};

uint32_t wire_crc32(uint32_t crc, const uint8_t *p, uint32_t n)
{
    crc = ~crc;
    while (n--) {
        crc ^= *p++;
        crc = (crc >> 4) ^ crc_nibble[crc & 0x0Fu];
        crc = (crc >> 4) ^ crc_nibble[crc & 0x0Fu];
    }
    return ~crc;
}

/* ---- little-endian helpers ---- */
static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] | ((uint16_t)p[1] << 8)); }
static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}
static uint8_t *put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    return p + 2;
}
static uint8_t *put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
    return p + 4;
}

/* ---- COBS ---- */
uint16_t wire_cobs_encode(const uint8_t *src, uint16_t n, uint8_t *dst)
{
    uint16_t ci = 0, o = 1, i;
    uint8_t code = 1;
    for (i = 0; i < n; i++) {
        uint8_t b = src[i];
        if (b == 0) {
            dst[ci] = code;
            ci = o++;
            code = 1;
            continue;
        }
        dst[o++] = b;
        code++;
        if (code == 0xFF) {
            dst[ci] = code;
            code = 1;
            if (i + 1u == n)
                return o; /* a full block ends the frame: no empty block */
            ci = o++;
        }
    }
    dst[ci] = code;
    return o;
}

int wire_cobs_decode(const uint8_t *src, uint16_t n, uint8_t *dst, uint16_t cap, uint16_t *out_len)
{
    uint16_t i = 0, o = 0;
    while (i < n) {
        uint16_t code = src[i++], end;
        if (code == 0)
            return WIRE_E_COBS;
        end = (uint16_t)(i + code - 1u);
        if (end > n || end < i)
            return WIRE_E_COBS;
        for (; i < end; i++) {
            if (src[i] == 0)
                return WIRE_E_COBS;
            if (o >= cap)
                return WIRE_E_SPACE;
            dst[o++] = src[i];
        }
        if (code < 0xFF && i < n) {
            if (o >= cap)
                return WIRE_E_SPACE;
            dst[o++] = 0;
        }
    }
    *out_len = o;
    return 0;
}

/* ---- frame check ---- */
static int check_frame(const uint8_t *f, uint16_t n)
{
    if (n < WIRE_MIN_FRAME)
        return WIRE_E_SHORT;
    if (n > WIRE_MAX_FRAME)
        return WIRE_E_LONG;
    if (wire_crc32(0, f, (uint32_t)(n - WIRE_CRC)) != get32(f + n - WIRE_CRC))
        return WIRE_E_CRC;
    return 0;
}

/* ---- receiver ---- */
void wire_rx_init(struct wire_rx *rx)
{
    rx->n = 0;
    rx->skip = 0;
    rx->pad = 0;
    rx->frame = 0;
    rx->frame_len = 0;
    rx->errors = 0;
}

static int rx_error(struct wire_rx *rx, int e)
{
    if (rx->errors != 0xFFFFu)
        rx->errors++;
    return e;
}

int wire_rx_feed(struct wire_rx *rx, uint8_t byte)
{
    uint16_t len;
    int e;
    if (byte != 0) {
        if (rx->skip)
            return WIRE_RX_NONE;
        if (rx->n == WIRE_MAX_WIRE - 1) {
            /* A frame's encoding is at most 255 bytes: too long, or a
             * delimiter was lost. Drop up to the next 0x00. */
            rx->skip = 1;
            rx->n = 0;
            return rx_error(rx, WIRE_E_LONG);
        }
        rx->buf[rx->n++] = byte;
        return WIRE_RX_NONE;
    }
    /* The delimiter. */
    len = rx->n;
    rx->n = 0;
    if (rx->skip) {
        rx->skip = 0;
        return WIRE_RX_NONE;
    }
    if (len == 0)
        return WIRE_RX_NONE; /* empty frame: ignored */
    e = wire_cobs_decode(rx->buf, len, rx->buf, (uint16_t)sizeof rx->buf, &len);
    if (e == 0)
        e = check_frame(rx->buf, len);
    if (e != 0)
        return rx_error(rx, e);
    rx->frame = rx->buf;
    rx->frame_len = len;
    return WIRE_RX_FRAME;
}

int wire_rx_poll(struct wire_rx *rx, int (*getc)(void))
{
    for (;;) {
        int c = getc();
        int r;
        if (c < 0)
            return WIRE_RX_NONE;
        r = wire_rx_feed(rx, (uint8_t)c);
        if (r != WIRE_RX_NONE)
            return r;
    }
}

/* ---- messages ---- */
static int known_type(uint8_t t)
{
    return (t >= WIRE_HELLO && t <= WIRE_RESET_COUNTERS) || (t >= WIRE_ACK && t <= WIRE_DATA) ||
           (t >= WIRE_BOOT && t <= WIRE_LOG);
}

/* The least payload of each fixed layout. */
static int parse_offset_data(const uint8_t *p, uint16_t n, struct wire_msg *m)
{
    if (n < 5)
        return WIRE_E_LENGTH;
    m->u.chunk.offset = get32(p);
    m->u.chunk.data = p + 4;
    m->u.chunk.len = (uint16_t)(n - 4);
    return 0;
}

int wire_parse(const uint8_t *f, uint16_t n, struct wire_msg *m)
{
    const uint8_t *p;
    uint16_t pn, i;
    int e = check_frame(f, n);
    if (e != 0)
        return e;
    m->version = f[0];
    m->type = f[1];
    m->seq = get16(f + 2);
    p = f + WIRE_HEADER;
    pn = (uint16_t)(n - WIRE_MIN_FRAME);
    if (m->version != WIRE_VERSION)
        return WIRE_E_VERSION;
    if (!known_type(m->type))
        return WIRE_E_TYPE;
    switch (m->type) {
    case WIRE_HELLO:
    case WIRE_RESET_COUNTERS:
        return 0;
    case WIRE_DEPLOY_CHUNK:
    case WIRE_SET_INPUT:
    case WIRE_DATA:
        return parse_offset_data(p, pn, m);
    case WIRE_DEPLOY_COMMIT:
        if (pn < 8)
            return WIRE_E_LENGTH;
        m->u.commit_req.length = get32(p);
        m->u.commit_req.crc = get32(p + 4);
        return 0;
    case WIRE_START:
        if (pn < 4)
            return WIRE_E_LENGTH;
        m->u.start.inference = get32(p);
        return 0;
    case WIRE_READ_OUTPUT:
    case WIRE_READ_NVM:
        if (pn < 6)
            return WIRE_E_LENGTH;
        m->u.read.offset = get32(p);
        m->u.read.length = get16(p + 4);
        if (m->u.read.length < 1 || m->u.read.length > WIRE_MAX_DATA)
            return WIRE_E_LENGTH;
        return 0;
    case WIRE_ACK:
        if (pn < 6)
            return WIRE_E_LENGTH;
        m->u.ack.status = p[0];
        m->u.ack.cmd = p[1];
        m->u.ack.detail = get32(p + 2);
        return 0;
    case WIRE_IDENTITY:
        if (pn < 20 + WIRE_NAME_LEN)
            return WIRE_E_LENGTH;
        m->u.identity.fw = get32(p);
        m->u.identity.nvm = get32(p + 4);
        m->u.identity.image = get32(p + 8);
        m->u.identity.boots = get32(p + 12);
        m->u.identity.rx_errors = get16(p + 16);
        m->u.identity.window = p[18];
        m->u.identity.flags = p[19];
        for (i = 0; i < WIRE_NAME_LEN && p[20 + i] != 0; i++)
            m->u.identity.name[i] = (char)p[20 + i];
        m->u.identity.name[i] = 0;
        for (; i < WIRE_NAME_LEN; i++)
            if (p[20 + i] != 0)
                return WIRE_E_FIELD;
        return 0;
    case WIRE_BOOT:
        if (pn < 10)
            return WIRE_E_LENGTH;
        m->u.boot.boots = get32(p);
        m->u.boot.resume = get32(p + 4);
        m->u.boot.reason = p[8];
        m->u.boot.flags = p[9];
        /* cycles grew the payload at its end: a 10-byte BOOT has none */
        m->u.boot.cycles = pn >= 14 ? get32(p + 10) : 0;
        return 0;
    case WIRE_TASK_DONE:
        if (pn < 8)
            return WIRE_E_LENGTH;
        m->u.task_done.task = get32(p);
        m->u.task_done.cycles = get32(p + 4);
        return 0;
    case WIRE_COMMIT:
        if (pn < 5)
            return WIRE_E_LENGTH;
        m->u.commit.progress = get32(p);
        m->u.commit.kind = p[4];
        return 0;
    case WIRE_RESULT:
        if (pn < 12)
            return WIRE_E_LENGTH;
        m->u.result.inference = get32(p);
        m->u.result.length = get32(p + 4);
        m->u.result.crc = get32(p + 8);
        return 0;
    case WIRE_LOG:
        if (pn < 1)
            return WIRE_E_LENGTH;
        m->u.log.level = p[0];
        m->u.log.text = p + 1;
        m->u.log.len = (uint16_t)(pn - 1);
        return 0;
    }
    return WIRE_E_TYPE;
}

/* The payload length of m, or an error. */
static int payload_len(const struct wire_msg *m)
{
    switch (m->type) {
    case WIRE_HELLO:
    case WIRE_RESET_COUNTERS:
        return 0;
    case WIRE_DEPLOY_CHUNK:
    case WIRE_SET_INPUT:
    case WIRE_DATA:
        if (m->u.chunk.len < 1 || m->u.chunk.len > WIRE_MAX_DATA)
            return WIRE_E_LENGTH;
        return 4 + m->u.chunk.len;
    case WIRE_DEPLOY_COMMIT:
    case WIRE_TASK_DONE:
        return 8;
    case WIRE_START:
        return 4;
    case WIRE_READ_OUTPUT:
    case WIRE_READ_NVM:
        if (m->u.read.length < 1 || m->u.read.length > WIRE_MAX_DATA)
            return WIRE_E_LENGTH;
        return 6;
    case WIRE_ACK:
        return 6;
    case WIRE_IDENTITY:
        return 20 + WIRE_NAME_LEN;
    case WIRE_BOOT:
        return 14;
    case WIRE_COMMIT:
        return 5;
    case WIRE_RESULT:
        return 12;
    case WIRE_LOG:
        if (m->u.log.len > WIRE_MAX_TEXT)
            return WIRE_E_LENGTH;
        return 1 + m->u.log.len;
    }
    return WIRE_E_TYPE;
}

int wire_build(const struct wire_msg *m, uint8_t *out, uint16_t cap, uint16_t *n)
{
    uint8_t *p;
    uint16_t i, len;
    int pl = payload_len(m);
    if (pl < 0)
        return pl;
    len = (uint16_t)(WIRE_MIN_FRAME + pl);
    if (len > cap)
        return WIRE_E_SPACE;
    out[0] = WIRE_VERSION;
    out[1] = m->type;
    p = put16(out + 2, m->seq);
    switch (m->type) {
    case WIRE_DEPLOY_CHUNK:
    case WIRE_SET_INPUT:
    case WIRE_DATA:
        p = put32(p, m->u.chunk.offset);
        for (i = 0; i < m->u.chunk.len; i++)
            *p++ = m->u.chunk.data[i];
        break;
    case WIRE_DEPLOY_COMMIT:
        p = put32(p, m->u.commit_req.length);
        p = put32(p, m->u.commit_req.crc);
        break;
    case WIRE_START:
        p = put32(p, m->u.start.inference);
        break;
    case WIRE_READ_OUTPUT:
    case WIRE_READ_NVM:
        p = put32(p, m->u.read.offset);
        p = put16(p, m->u.read.length);
        break;
    case WIRE_ACK:
        *p++ = m->u.ack.status;
        *p++ = m->u.ack.cmd;
        p = put32(p, m->u.ack.detail);
        break;
    case WIRE_IDENTITY:
        p = put32(p, m->u.identity.fw);
        p = put32(p, m->u.identity.nvm);
        p = put32(p, m->u.identity.image);
        p = put32(p, m->u.identity.boots);
        p = put16(p, m->u.identity.rx_errors);
        *p++ = m->u.identity.window;
        *p++ = m->u.identity.flags;
        for (i = 0; i < WIRE_NAME_LEN && m->u.identity.name[i] != 0; i++)
            *p++ = (uint8_t)m->u.identity.name[i];
        for (; i < WIRE_NAME_LEN; i++)
            *p++ = 0;
        break;
    case WIRE_BOOT:
        p = put32(p, m->u.boot.boots);
        p = put32(p, m->u.boot.resume);
        *p++ = m->u.boot.reason;
        *p++ = m->u.boot.flags;
        p = put32(p, m->u.boot.cycles);
        break;
    case WIRE_TASK_DONE:
        p = put32(p, m->u.task_done.task);
        p = put32(p, m->u.task_done.cycles);
        break;
    case WIRE_COMMIT:
        p = put32(p, m->u.commit.progress);
        *p++ = m->u.commit.kind;
        break;
    case WIRE_RESULT:
        p = put32(p, m->u.result.inference);
        p = put32(p, m->u.result.length);
        p = put32(p, m->u.result.crc);
        break;
    case WIRE_LOG:
        *p++ = m->u.log.level;
        for (i = 0; i < m->u.log.len; i++)
            *p++ = m->u.log.text[i];
        break;
    default: /* HELLO, RESET_COUNTERS: no payload */
        break;
    }
    put32(p, wire_crc32(0, out, (uint32_t)(len - WIRE_CRC)));
    *n = len;
    return 0;
}

int wire_encode(const struct wire_msg *m, uint8_t *out, uint16_t *n)
{
    uint8_t frame[WIRE_MAX_FRAME];
    uint16_t len, k;
    int e = wire_build(m, frame, (uint16_t)sizeof frame, &len);
    if (e != 0)
        return e;
    k = wire_cobs_encode(frame, len, out);
    out[k++] = 0;
    *n = k;
    return 0;
}

int wire_send(const struct wire_msg *m, void (*write)(const uint8_t *buf, uint32_t n))
{
    /* COBS on the fly: each block's code byte, then its bytes straight
     * from the frame, so that only the frame is held. */
    uint8_t frame[WIRE_MAX_FRAME];
    uint16_t len, i = 0;
    static const uint8_t zero = 0;
    int e = wire_build(m, frame, (uint16_t)sizeof frame, &len);
    if (e != 0)
        return e;
    write(&zero, 1); /* a delimiter first: ends whatever a brown-out cut */
    for (;;) {
        uint16_t j = i;
        uint8_t code;
        while (j < len && frame[j] != 0 && (uint16_t)(j - i) < 254u)
            j++;
        code = (uint8_t)(j - i + 1u);
        write(&code, 1);
        if (j > i)
            write(frame + i, (uint32_t)(j - i));
        if (j == len)
            break;
        if (code == 0xFF) {
            i = j; /* a full block: no zero stands after it */
            continue;
        }
        i = (uint16_t)(j + 1u); /* skip the zero the block stands for */
        if (i == len) {
            /* The frame ends with a zero: an empty last block. */
            code = 1;
            write(&code, 1);
            break;
        }
    }
    write(&zero, 1);
    return 0;
}

/* ---- de-duplication history ---- */
void wire_history_clear(struct wire_history *h)
{
    h->next = 0;
    h->count = 0;
}

const struct wire_hist_entry *wire_history_find(const struct wire_history *h, const uint8_t *frame, uint16_t n)
{
    uint8_t i;
    uint16_t seq;
    uint32_t crc;
    if (n < WIRE_MIN_FRAME)
        return 0;
    seq = get16(frame + 2);
    crc = get32(frame + n - WIRE_CRC);
    for (i = 0; i < h->count; i++)
        if (h->e[i].seq == seq && h->e[i].crc == crc && h->e[i].type == frame[1])
            return &h->e[i];
    return 0;
}

void wire_history_put(struct wire_history *h, const uint8_t *frame, uint16_t n, uint8_t status, uint32_t detail)
{
    struct wire_hist_entry *e;
    if (n < WIRE_MIN_FRAME)
        return;
    e = &h->e[h->next];
    e->seq = get16(frame + 2);
    e->type = frame[1];
    e->status = status;
    e->crc = get32(frame + n - WIRE_CRC);
    e->detail = detail;
    h->next = (uint8_t)((h->next + 1u) % WIRE_HISTORY);
    if (h->count < WIRE_HISTORY)
        h->count++;
}
