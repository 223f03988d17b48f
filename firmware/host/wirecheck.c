/*
 * wirecheck - checks the firmware's wire code (runtime/wire.c) on the host.
 *
 *   wirecheck VECTORS     checks every line of the shared test vectors
 *                         (firmware/proto/vectors.txt): each frame decodes to
 *                         the fields of its line, and encoding those fields
 *                         gives the same bytes; each bad frame is refused with
 *                         the error of its line. Then self-tests (COBS round
 *                         trips, the streaming sender, resynchronization, the
 *                         de-duplication history). Exit status 0 only if all
 *                         pass.
 *   wirecheck --pipe      reads a byte stream on stdin, decodes every frame,
 *                         writes each one it understands re-encoded to stdout
 *                         and one line per frame or error to stderr (the text
 *                         form of the frame, or error=KIND).
 *
 * Build: cc -std=c99 -O2 -Wall -Wextra -Werror -Ifirmware/runtime \
 *            firmware/runtime/wire.c firmware/host/wirecheck.c -o wirecheck
 */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wire.h"

/* ---- names ---- */
struct name { int value; const char *name; };

static const struct name type_names[] = {
    {WIRE_HELLO, "HELLO"}, {WIRE_DEPLOY_CHUNK, "DEPLOY_CHUNK"}, {WIRE_DEPLOY_COMMIT, "DEPLOY_COMMIT"},
    {WIRE_SET_INPUT, "SET_INPUT"}, {WIRE_START, "START"}, {WIRE_READ_OUTPUT, "READ_OUTPUT"},
    {WIRE_READ_NVM, "READ_NVM"}, {WIRE_RESET_COUNTERS, "RESET_COUNTERS"}, {WIRE_ACK, "ACK"},
    {WIRE_IDENTITY, "IDENTITY"}, {WIRE_DATA, "DATA"}, {WIRE_BOOT, "BOOT"}, {WIRE_TASK_DONE, "TASK_DONE"},
    {WIRE_COMMIT, "COMMIT"}, {WIRE_RESULT, "RESULT"}, {WIRE_LOG, "LOG"}, {0, 0}};
static const struct name status_names[] = {
    {WIRE_OK, "OK"}, {WIRE_UNSUPPORTED_VERSION, "UNSUPPORTED_VERSION"}, {WIRE_UNKNOWN_TYPE, "UNKNOWN_TYPE"},
    {WIRE_BAD_LENGTH, "BAD_LENGTH"}, {WIRE_BAD_RANGE, "BAD_RANGE"}, {WIRE_BAD_CRC, "BAD_CRC"},
    {WIRE_NO_IMAGE, "NO_IMAGE"}, {WIRE_BUSY, "BUSY"}, {WIRE_FAILED, "FAILED"}, {0, 0}};
static const struct name reason_names[] = {
    {WIRE_BOOT_POWER_ON, "POWER_ON"}, {WIRE_BOOT_RESET, "RESET"}, {WIRE_BOOT_WATCHDOG, "WATCHDOG"},
    {WIRE_BOOT_SOFTWARE, "SOFTWARE"}, {WIRE_BOOT_UNKNOWN, "UNKNOWN"}, {0, 0}};
static const struct name commit_names[] = {{WIRE_COMMIT_TASK, "TASK"}, {WIRE_COMMIT_EARLY, "EARLY"}, {0, 0}};
static const struct name error_names[] = {
    {WIRE_E_COBS, "cobs"}, {WIRE_E_SHORT, "short"}, {WIRE_E_LONG, "long"}, {WIRE_E_CRC, "crc"},
    {WIRE_E_VERSION, "version"}, {WIRE_E_TYPE, "type"}, {WIRE_E_LENGTH, "length"}, {WIRE_E_FIELD, "field"},
    {WIRE_E_SPACE, "space"}, {0, 0}};

static const char *name_of(const struct name *t, int v)
{
    for (; t->name; t++)
        if (t->value == v)
            return t->name;
    return 0;
}

static int value_of(const struct name *t, const char *s, int *v)
{
    for (; t->name; t++)
        if (strcmp(t->name, s) == 0) {
            *v = t->value;
            return 1;
        }
    return 0;
}

/* ---- the fields of each message (the order of PROTOCOL.md) ---- */
enum kind { F_DEC, F_HEX, F_STATUS, F_TYPE, F_REASON, F_COMMIT, F_DATA, F_TEXT, F_NAME };
struct field { const char *name; int kind; int width; size_t off, len_off; };
#define U(m) offsetof(struct wire_msg, u.m)
#define END {0, 0, 0, 0, 0}

static const struct field f_none[] = {END};
static const struct field f_chunk[] = {{"offset", F_DEC, 32, U(chunk.offset), 0}, {"data", F_DATA, 0, U(chunk.data), U(chunk.len)}, END};
static const struct field f_commit_req[] = {{"length", F_DEC, 32, U(commit_req.length), 0}, {"crc", F_HEX, 32, U(commit_req.crc), 0}, END};
static const struct field f_start[] = {{"inference", F_DEC, 32, U(start.inference), 0}, END};
static const struct field f_read[] = {{"offset", F_DEC, 32, U(read.offset), 0}, {"length", F_DEC, 16, U(read.length), 0}, END};
static const struct field f_ack[] = {{"status", F_STATUS, 8, U(ack.status), 0}, {"cmd", F_TYPE, 8, U(ack.cmd), 0}, {"detail", F_HEX, 32, U(ack.detail), 0}, END};
static const struct field f_identity[] = {
    {"fw", F_HEX, 32, U(identity.fw), 0}, {"nvm", F_DEC, 32, U(identity.nvm), 0}, {"image", F_DEC, 32, U(identity.image), 0},
    {"boots", F_DEC, 32, U(identity.boots), 0}, {"rx_errors", F_DEC, 16, U(identity.rx_errors), 0},
    {"window", F_DEC, 8, U(identity.window), 0}, {"flags", F_HEX, 8, U(identity.flags), 0},
    {"name", F_NAME, 0, U(identity.name), 0}, END};
static const struct field f_boot[] = {{"boots", F_DEC, 32, U(boot.boots), 0}, {"resume", F_DEC, 32, U(boot.resume), 0},
                                      {"reason", F_REASON, 8, U(boot.reason), 0}, {"flags", F_HEX, 8, U(boot.flags), 0},
                                      {"cycles", F_DEC, 32, U(boot.cycles), 0}, END};
static const struct field f_task_done[] = {{"task", F_DEC, 32, U(task_done.task), 0}, {"cycles", F_DEC, 32, U(task_done.cycles), 0}, END};
static const struct field f_commit[] = {{"progress", F_DEC, 32, U(commit.progress), 0}, {"kind", F_COMMIT, 8, U(commit.kind), 0}, END};
static const struct field f_result[] = {{"inference", F_DEC, 32, U(result.inference), 0}, {"length", F_DEC, 32, U(result.length), 0},
                                        {"crc", F_HEX, 32, U(result.crc), 0}, END};
static const struct field f_log[] = {{"level", F_DEC, 8, U(log.level), 0}, {"text", F_TEXT, 0, U(log.text), U(log.len)}, END};

static const struct field *fields_of(int type)
{
    switch (type) {
    case WIRE_HELLO: case WIRE_RESET_COUNTERS: return f_none;
    case WIRE_DEPLOY_CHUNK: case WIRE_SET_INPUT: case WIRE_DATA: return f_chunk;
    case WIRE_DEPLOY_COMMIT: return f_commit_req;
    case WIRE_START: return f_start;
    case WIRE_READ_OUTPUT: case WIRE_READ_NVM: return f_read;
    case WIRE_ACK: return f_ack;
    case WIRE_IDENTITY: return f_identity;
    case WIRE_BOOT: return f_boot;
    case WIRE_TASK_DONE: return f_task_done;
    case WIRE_COMMIT: return f_commit;
    case WIRE_RESULT: return f_result;
    case WIRE_LOG: return f_log;
    }
    return 0;
}

static uint32_t get_num(const struct wire_msg *m, const struct field *f)
{
    const char *p = (const char *)m + f->off;
    uint8_t v8;
    uint16_t v16;
    uint32_t v32;
    switch (f->width) {
    case 8: memcpy(&v8, p, 1); return v8;
    case 16: memcpy(&v16, p, 2); return v16;
    default: memcpy(&v32, p, 4); return v32;
    }
}

static void set_num(struct wire_msg *m, const struct field *f, uint32_t v)
{
    char *p = (char *)m + f->off;
    uint8_t v8 = (uint8_t)v;
    uint16_t v16 = (uint16_t)v;
    switch (f->width) {
    case 8: memcpy(p, &v8, 1); break;
    case 16: memcpy(p, &v16, 2); break;
    default: memcpy(p, &v, 4); break;
    }
}

static void get_bytes(const struct wire_msg *m, const struct field *f, const uint8_t **b, uint16_t *n)
{
    if (f->kind == F_NAME) {
        *b = (const uint8_t *)m + f->off;
        *n = (uint16_t)strlen((const char *)*b);
        return;
    }
    memcpy(b, (const char *)m + f->off, sizeof *b);
    memcpy(n, (const char *)m + f->len_off, sizeof *n);
}

/* ---- the text form (harness/wire/text.go) ---- */
static int printable(const uint8_t *b, uint16_t n)
{
    uint16_t i;
    for (i = 0; i < n; i++)
        if (b[i] < 0x20 || b[i] > 0x7E || b[i] == '"' || b[i] == '\\')
            return 0;
    return 1;
}

/* Writes the canonical text form of m into out (cap bytes). */
static void format_msg(const struct wire_msg *m, char *out, size_t cap)
{
    const struct field *f = fields_of(m->type);
    const char *tn = name_of(type_names, m->type);
    size_t k = 0;
    k += (size_t)snprintf(out + k, cap - k, "%s v=%u seq=%u", tn ? tn : "?", (unsigned)m->version, (unsigned)m->seq);
    for (; f && f->name && k < cap; f++) {
        k += (size_t)snprintf(out + k, cap - k, " %s=", f->name);
        if (k >= cap)
            break;
        if (f->kind == F_DATA || f->kind == F_TEXT || f->kind == F_NAME) {
            const uint8_t *b;
            uint16_t n, i;
            get_bytes(m, f, &b, &n);
            if (f->kind != F_DATA && printable(b, n))
                k += (size_t)snprintf(out + k, cap - k, "\"%.*s\"", (int)n, (const char *)b);
            else if (n == 0)
                k += (size_t)snprintf(out + k, cap - k, "\"\"");
            else
                for (i = 0; i < n && k < cap; i++)
                    k += (size_t)snprintf(out + k, cap - k, "%02x", b[i]);
            continue;
        }
        {
            uint32_t v = get_num(m, f);
            const char *s = 0;
            if (f->kind == F_STATUS) s = name_of(status_names, (int)v);
            if (f->kind == F_TYPE) s = name_of(type_names, (int)v);
            if (f->kind == F_REASON) s = name_of(reason_names, (int)v);
            if (f->kind == F_COMMIT) s = name_of(commit_names, (int)v);
            if (s)
                k += (size_t)snprintf(out + k, cap - k, "%s", s);
            else if (f->kind == F_HEX)
                k += (size_t)snprintf(out + k, cap - k, "0x%0*lx", f->width / 4, (unsigned long)v);
            else if (f->kind == F_TYPE)
                k += (size_t)snprintf(out + k, cap - k, "0x%02lx", (unsigned long)v);
            else
                k += (size_t)snprintf(out + k, cap - k, "%lu", (unsigned long)v);
        }
    }
}

static int hexval(int c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Hex digits s[0..n) into out; returns the byte count or -1. */
static long unhex(const char *s, size_t n, uint8_t *out, size_t cap)
{
    size_t i;
    if (n % 2 != 0 || n / 2 > cap)
        return -1;
    for (i = 0; i < n; i += 2) {
        int a = hexval(s[i]), b = hexval(s[i + 1]);
        if (a < 0 || b < 0)
            return -1;
        out[i / 2] = (uint8_t)(a << 4 | b);
    }
    return (long)(n / 2);
}

static int parse_u32(const char *s, int width, uint32_t *v)
{
    char *end;
    unsigned long x;
    if (*s == 0 || *s == '-' || *s == '+')
        return 0;
    x = strtoul(s, &end, 0);
    if (*end != 0)
        return 0;
    if (width < 32 && x >= (1UL << width))
        return 0;
    if (x > 0xFFFFFFFFUL)
        return 0;
    *v = (uint32_t)x;
    return 1;
}

/* Splits text into tokens in place (quoted values may hold spaces). */
static int tokenize(char *s, char **tok, int max)
{
    int n = 0;
    while (*s) {
        char *start;
        if (*s == ' ' || *s == '\t') {
            s++;
            continue;
        }
        start = s;
        while (*s && *s != ' ' && *s != '\t') {
            if (*s == '"') {
                char *q = strchr(s + 1, '"');
                if (!q)
                    return -1;
                s = q + 1;
                continue;
            }
            s++;
        }
        if (n == max)
            return -1;
        tok[n++] = start;
        if (*s)
            *s++ = 0;
    }
    return n;
}

/* Storage of the byte fields of a parsed text line. */
static uint8_t text_bytes[2][WIRE_MAX_FRAME];

/* Parses the text form (modified in place) into m; 0 or a message. */
static const char *parse_text(char *s, struct wire_msg *m)
{
    char *tok[64];
    int n = tokenize(s, tok, 64), i, type, used[64] = {0};
    const struct field *f;
    int slot = 0;
    uint32_t v;
    if (n < 1)
        return "no type";
    if (!value_of(type_names, tok[0], &type))
        return "unknown type name";
    memset(m, 0, sizeof *m);
    m->type = (uint8_t)type;
    {
        const struct field hdr[2] = {{"v", F_DEC, 8, offsetof(struct wire_msg, version), 0},
                                     {"seq", F_DEC, 16, offsetof(struct wire_msg, seq), 0}};
        int h;
        for (h = 0; h < 2; h++) {
            for (i = 1; i < n; i++)
                if (!used[i] && strncmp(tok[i], hdr[h].name, strlen(hdr[h].name)) == 0 && tok[i][strlen(hdr[h].name)] == '=')
                    break;
            if (i == n)
                return "header field missing";
            used[i] = 1;
            if (!parse_u32(tok[i] + strlen(hdr[h].name) + 1, hdr[h].width, &v))
                return "bad header number";
            set_num(m, &hdr[h], v);
        }
    }
    for (f = fields_of(type); f->name; f++) {
        const char *val;
        size_t nl = strlen(f->name);
        for (i = 1; i < n; i++)
            if (!used[i] && strncmp(tok[i], f->name, nl) == 0 && tok[i][nl] == '=')
                break;
        if (i == n)
            return "field missing";
        used[i] = 1;
        val = tok[i] + nl + 1;
        if (f->kind == F_DATA || f->kind == F_TEXT || f->kind == F_NAME) {
            size_t vl = strlen(val);
            long len;
            uint8_t *buf = text_bytes[slot++];
            if (val[0] == '"') {
                if (vl < 2 || val[vl - 1] != '"')
                    return "bad quoted string";
                len = (long)(vl - 2);
                if (len > WIRE_MAX_FRAME)
                    return "string too long";
                memcpy(buf, val + 1, (size_t)len);
            } else if ((len = unhex(val, vl, buf, WIRE_MAX_FRAME)) < 0) {
                return "bad hex";
            }
            if (f->kind == F_NAME) {
                if (len > WIRE_NAME_LEN)
                    return "name too long";
                memcpy((char *)m + f->off, buf, (size_t)len);
                ((char *)m + f->off)[len] = 0;
            } else {
                const uint8_t *p = buf;
                uint16_t l16 = (uint16_t)len;
                memcpy((char *)m + f->off, &p, sizeof p);
                memcpy((char *)m + f->len_off, &l16, sizeof l16);
            }
            continue;
        }
        {
            int e;
            const struct name *names = f->kind == F_STATUS ? status_names : f->kind == F_TYPE ? type_names
                                     : f->kind == F_REASON ? reason_names : f->kind == F_COMMIT ? commit_names : 0;
            if (names && value_of(names, val, &e))
                v = (uint32_t)e;
            else if (!parse_u32(val, f->width, &v))
                return "bad number";
            set_num(m, f, v);
        }
    }
    for (i = 1; i < n; i++)
        if (!used[i])
            return "unknown field";
    return 0;
}

/* ---- feeding a receiver ---- */

/* Feeds b[0..n) to a fresh receiver; returns the first result that is a
 * frame or an error (and copies the frame), or WIRE_RX_NONE. */
static int first_result(const uint8_t *b, size_t n, uint8_t *frame, uint16_t *len)
{
    static struct wire_rx rx;
    size_t i;
    wire_rx_init(&rx);
    for (i = 0; i < n; i++) {
        int r = wire_rx_feed(&rx, b[i]);
        if (r == WIRE_RX_FRAME) {
            memcpy(frame, rx.frame, rx.frame_len);
            *len = rx.frame_len;
            return r;
        }
        if (r < 0)
            return r;
    }
    return WIRE_RX_NONE;
}

/* A write function that collects bytes (for wire_send). */
static uint8_t sent[4 * WIRE_MAX_WIRE];
static size_t sent_n;
static void collect(const uint8_t *buf, uint32_t n)
{
    if (sent_n + n <= sizeof sent) {
        memcpy(sent + sent_n, buf, n);
    }
    sent_n += n;
}

static int failures;

static void fail(const char *where, const char *what)
{
    fprintf(stderr, "%s: %s\n", where, what);
    failures++;
}

static void check_line(const char *where, char *line)
{
    static uint8_t wire[8192];
    uint8_t frame[WIRE_MAX_WIRE];
    uint16_t flen = 0, elen;
    char *sp = strchr(line, ' ');
    long n;
    int r;
    struct wire_msg got, want;
    char text[2048];
    uint8_t enc[WIRE_MAX_WIRE];
    const char *err;

    if (!sp) {
        fail(where, "no space after the hex");
        return;
    }
    *sp++ = 0;
    while (*sp == ' ')
        sp++;
    n = unhex(line, strlen(line), wire, sizeof wire);
    if (n <= 0 || wire[n - 1] != 0 || memchr(wire, 0, (size_t)n) != wire + n - 1) {
        fail(where, "bad hex, or not one frame ending with the only 0x00");
        return;
    }
    r = first_result(wire, (size_t)n, frame, &flen);
    if (r == WIRE_RX_FRAME)
        r = wire_parse(frame, flen, &got);
    if (strncmp(sp, "error=", 6) == 0) {
        const char *k = r < 0 ? name_of(error_names, r) : "none";
        if (!k || strcmp(k, sp + 6) != 0) {
            snprintf(text, sizeof text, "decoding gives error %s, the line says %s", k ? k : "?", sp + 6);
            fail(where, text);
        }
        return;
    }
    if (r != 0) {
        const char *k = name_of(error_names, r);
        snprintf(text, sizeof text, "decoding fails: %s", k ? k : "no frame");
        fail(where, text);
        return;
    }
    format_msg(&got, text, sizeof text);
    if (strcmp(text, sp) != 0) {
        fprintf(stderr, "%s: decodes to\n  %s\nthe line says\n  %s\n", where, text, sp);
        failures++;
        return;
    }
    if ((err = parse_text(sp, &want)) != 0) {
        fail(where, err);
        return;
    }
    if (want.version != WIRE_VERSION) {
        fail(where, "a valid frame of another version");
        return;
    }
    r = wire_encode(&want, enc, &elen);
    if (r != 0 || elen != (uint16_t)n || memcmp(enc, wire, (size_t)n) != 0) {
        fail(where, "encoding the fields gives other bytes");
        return;
    }
    sent_n = 0;
    r = wire_send(&want, collect);
    if (r != 0 || sent_n != (size_t)n + 1 || sent[0] != 0 || memcmp(sent + 1, wire, (size_t)n) != 0)
        fail(where, "wire_send writes other bytes than 0x00 and wire_encode's");
}

static int check_file(const char *path)
{
    static char line[16384];
    char where[512];
    FILE *f = fopen(path, "r");
    int lineno = 0, count = 0;
    if (!f) {
        perror(path);
        return -1;
    }
    while (fgets(line, sizeof line, f)) {
        size_t l = strlen(line);
        char *s = line;
        lineno++;
        while (l > 0 && (line[l - 1] == '\n' || line[l - 1] == '\r' || line[l - 1] == ' '))
            line[--l] = 0;
        while (*s == ' ' || *s == '\t')
            s++;
        if (*s == 0 || *s == '#')
            continue;
        snprintf(where, sizeof where, "%s:%d", path, lineno);
        check_line(where, s);
        count++;
    }
    fclose(f);
    return count;
}

/* ---- self-tests ---- */
static uint32_t rng = 12345;
static uint8_t rnd(void)
{
    rng = rng * 1103515245UL + 12345UL;
    return (uint8_t)(rng >> 16);
}

static void selftest(void)
{
    static uint8_t src[1200], enc[1300], dec[1300];
    struct wire_rx rx;
    struct wire_history h;
    struct wire_msg m;
    uint8_t w[WIRE_MAX_WIRE], f[WIRE_MAX_FRAME];
    uint16_t n, k, len, i;
    int trial, r, frames;

    /* CRC-32 check value. */
    if (wire_crc32(0, (const uint8_t *)"123456789", 9) != 0xCBF43926UL)
        fail("selftest", "CRC-32 of \"123456789\" is not 0xcbf43926");
    /* COBS round trips, many lengths and zero densities. */
    for (trial = 0; trial < 3000; trial++) {
        uint16_t len0 = (uint16_t)(trial % 1100);
        int density = trial % 5;
        for (i = 0; i < len0; i++) {
            uint8_t b = rnd();
            src[i] = density == 0 ? 0 : density == 4 ? (uint8_t)(b | 1) : (b % (uint8_t)(density * 8) == 0 ? 0 : b);
        }
        n = wire_cobs_encode(src, len0, enc);
        if (n > len0 + len0 / 254 + 1 || memchr(enc, 0, n) != 0) {
            fail("selftest", "COBS encoding too long or holds 0x00");
            return;
        }
        if (len0 <= WIRE_MAX_FRAME && n != len0 + 1) {
            fail("selftest", "COBS: a frame of n <= 254 bytes does not encode to n+1");
            return;
        }
        if (wire_cobs_decode(enc, n, dec, sizeof dec, &k) != 0 || k != len0 || memcmp(dec, src, len0) != 0) {
            fail("selftest", "COBS round trip");
            return;
        }
    }
    /* Resynchronization: garbage, a half frame, a too long run, then a
     * good frame. */
    memset(&m, 0, sizeof m);
    m.type = WIRE_TASK_DONE;
    m.seq = 77;
    m.u.task_done.task = 5;
    m.u.task_done.cycles = 1000;
    if (wire_encode(&m, w, &len) != 0) {
        fail("selftest", "encode");
        return;
    }
    wire_rx_init(&rx);
    frames = 0;
    for (i = 0; i < 40; i++)
        wire_rx_feed(&rx, (uint8_t)(i * 37 + 1));
    for (i = 0; i < len / 2; i++)
        wire_rx_feed(&rx, w[i]);
    wire_rx_feed(&rx, 0);
    for (i = 0; i < 600; i++)
        wire_rx_feed(&rx, 0x55);
    wire_rx_feed(&rx, 0);
    wire_rx_feed(&rx, 0);
    for (i = 0; i < len; i++) {
        r = wire_rx_feed(&rx, w[i]);
        if (r == WIRE_RX_FRAME) {
            frames++;
            if (wire_parse(rx.frame, rx.frame_len, &m) != 0 || m.seq != 77 || m.u.task_done.cycles != 1000)
                fail("selftest", "resynchronized frame decodes wrong");
        }
    }
    if (frames != 1 || rx.errors < 2)
        fail("selftest", "receiver did not resynchronize after garbage and a half frame");
    /* The history: a retransmitted frame is found, another is not. */
    wire_history_clear(&h);
    memset(&m, 0, sizeof m);
    m.type = WIRE_START;
    for (i = 0; i < 40; i++) {
        m.seq = i;
        m.u.start.inference = i;
        wire_build(&m, f, sizeof f, &len);
        if (wire_history_find(&h, f, len))
            fail("selftest", "history finds a new command");
        wire_history_put(&h, f, len, WIRE_OK, i);
        if (!wire_history_find(&h, f, len) || wire_history_find(&h, f, len)->detail != i)
            fail("selftest", "history misses a command just put");
    }
    m.seq = 39;
    m.u.start.inference = 99; /* same seq, other content: a new command */
    wire_build(&m, f, sizeof f, &len);
    if (wire_history_find(&h, f, len))
        fail("selftest", "history matches another command with the same seq");
    m.seq = 40 - WIRE_HISTORY - 1;
    m.u.start.inference = m.seq; /* just older than the last WIRE_HISTORY */
    wire_build(&m, f, sizeof f, &len);
    if (wire_history_find(&h, f, len))
        fail("selftest", "history keeps more than WIRE_HISTORY commands");
    m.seq = 40 - WIRE_HISTORY;
    m.u.start.inference = m.seq;
    wire_build(&m, f, sizeof f, &len);
    if (!wire_history_find(&h, f, len))
        fail("selftest", "history forgets one of the last WIRE_HISTORY commands");
}

/* ---- pipe mode ---- */
static int pipe_mode(void)
{
    static struct wire_rx rx;
    struct wire_msg m;
    uint8_t out[WIRE_MAX_WIRE];
    char text[2048];
    uint16_t n;
    int c;
    wire_rx_init(&rx);
    while ((c = getchar()) != EOF) {
        int r = wire_rx_feed(&rx, (uint8_t)c);
        if (r == WIRE_RX_NONE)
            continue;
        if (r == WIRE_RX_FRAME)
            r = wire_parse(rx.frame, rx.frame_len, &m);
        if (r != 0) {
            const char *k = name_of(error_names, r);
            fprintf(stderr, "error=%s\n", k ? k : "?");
            continue;
        }
        format_msg(&m, text, sizeof text);
        fprintf(stderr, "%s\n", text);
        if (wire_encode(&m, out, &n) != 0) {
            fprintf(stderr, "error=encode\n");
            return 1;
        }
        fwrite(out, 1, n, stdout);
    }
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv)
{
    int n;
    if (argc == 2 && strcmp(argv[1], "--pipe") == 0)
        return pipe_mode();
    if (argc != 2) {
        fprintf(stderr, "usage: wirecheck VECTORS | wirecheck --pipe\n");
        return 2;
    }
    n = check_file(argv[1]);
    if (n < 0)
        return 1;
    selftest();
    printf("wirecheck: %d vectors, %d failures\n", n, failures);
    return failures == 0 && n > 0 ? 0 : 1;
}
