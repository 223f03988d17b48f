/*
 * wire.h - the board side of the wire protocol (firmware/PROTOCOL.md):
 * COBS framing with a 0x00 delimiter, CRC-32 (IEEE, as zlib) over each
 * decoded frame, the 4-byte header and every message of version 1.
 *
 * C99, no heap, no other runtime file, no libc beyond <stdint.h> and
 * <stddef.h> (it builds freestanding for the MSP430, where int is 16 bits).
 * Buffers are fixed: one frame is at most WIRE_MAX_WIRE bytes on the wire.
 *
 * Typical use in the firmware, with port.h's UART functions:
 *
 *     static struct wire_rx rx;                  // 266 bytes of SRAM (MSP430)
 *     struct wire_msg cmd;
 *     wire_rx_init(&rx);
 *     for (;;) {
 *         int r = wire_rx_poll(&rx, port_uart_getc);
 *         if (r == WIRE_RX_FRAME) {
 *             int e = wire_parse(rx.frame, rx.frame_len, &cmd);
 *             ... execute, then answer:
 *             struct wire_msg ack = {0};
 *             ack.type = WIRE_ACK; ack.seq = cmd.seq; ack.u.ack.status = ...;
 *             wire_send(&ack, port_uart_write);
 *         }
 *     }
 *
 * Data fields of a parsed message (chunk.data, log.text) point into the
 * frame they were parsed from: use them before the next wire_rx_* call.
 */
#ifndef IH_WIRE_H
#define IH_WIRE_H

#include <stddef.h>
#include <stdint.h>

#define WIRE_VERSION 1
#define WIRE_MAX_WIRE 256   /* bytes on the wire, the 0x00 delimiter included */
#define WIRE_MAX_FRAME 254  /* decoded: header 4 + payload + CRC 4 */
#define WIRE_HEADER 4
#define WIRE_CRC 4
#define WIRE_MIN_FRAME 8
#define WIRE_MAX_PAYLOAD 246
#define WIRE_MAX_DATA 242   /* data bytes after a u32 offset */
#define WIRE_NAME_LEN 16
#define WIRE_MAX_TEXT 245
#define WIRE_WINDOW 8       /* the most commands a host may have outstanding */
#define WIRE_HISTORY 16     /* commands the de-duplication history remembers: 2 * WIRE_WINDOW */

/* Message types: commands 0x01..0x3F, responses 0x40..0x7F, events 0x80..0xFF. */
enum wire_type {
    WIRE_HELLO = 0x01,
    WIRE_DEPLOY_CHUNK = 0x02,
    WIRE_DEPLOY_COMMIT = 0x03,
    WIRE_SET_INPUT = 0x04,
    WIRE_START = 0x05,
    WIRE_READ_OUTPUT = 0x06,
    WIRE_READ_NVM = 0x07,
    WIRE_RESET_COUNTERS = 0x08,
    WIRE_ACK = 0x40,
    WIRE_IDENTITY = 0x41,
    WIRE_DATA = 0x42,
    WIRE_BOOT = 0x80,
    WIRE_TASK_DONE = 0x81,
    WIRE_COMMIT = 0x82,
    WIRE_RESULT = 0x83,
    WIRE_LOG = 0x84
};

/* ACK statuses. */
enum wire_status {
    WIRE_OK = 0,
    WIRE_UNSUPPORTED_VERSION = 1, /* detail: the board's version */
    WIRE_UNKNOWN_TYPE = 2,
    WIRE_BAD_LENGTH = 3,
    WIRE_BAD_RANGE = 4,           /* detail: the size of the region */
    WIRE_BAD_CRC = 5,             /* detail: the CRC the board computed */
    WIRE_NO_IMAGE = 6,
    WIRE_BUSY = 7,
    WIRE_FAILED = 8               /* detail: the port's code */
};

/* BOOT reasons and flags, IDENTITY flags, COMMIT kinds. */
enum wire_boot_reason { WIRE_BOOT_POWER_ON = 0, WIRE_BOOT_RESET = 1, WIRE_BOOT_WATCHDOG = 2,
                        WIRE_BOOT_SOFTWARE = 3, WIRE_BOOT_UNKNOWN = 0xFF };
#define WIRE_BOOT_NVM_VALID 0x01
#define WIRE_BOOT_IMAGE_VALID 0x02
#define WIRE_BOOT_RUNNING 0x04
#define WIRE_IDENTITY_IMAGE_VALID 0x01
enum wire_commit_kind { WIRE_COMMIT_TASK = 0, WIRE_COMMIT_EARLY = 1 };

/* Errors (negative). Framing errors drop the frame; the others concern a
 * frame that arrived intact (answer a command with the matching status). */
enum wire_err {
    WIRE_E_COBS = -1,    /* a COBS code byte points past the end */
    WIRE_E_SHORT = -2,   /* decoded frame shorter than WIRE_MIN_FRAME */
    WIRE_E_LONG = -3,    /* more than WIRE_MAX_WIRE bytes before a delimiter */
    WIRE_E_CRC = -4,     /* CRC mismatch */
    WIRE_E_VERSION = -5, /* unknown version: answer WIRE_UNSUPPORTED_VERSION */
    WIRE_E_TYPE = -6,    /* unknown type: answer WIRE_UNKNOWN_TYPE (commands only) */
    WIRE_E_LENGTH = -7,  /* payload too short or data out of bounds: WIRE_BAD_LENGTH */
    WIRE_E_FIELD = -8,   /* a field value not allowed */
    WIRE_E_SPACE = -9    /* encoding: the output buffer is too small */
};

/* One message. version, type and seq are the header; for WIRE_E_VERSION and
 * WIRE_E_TYPE wire_parse still fills them in (so a board can answer). */
struct wire_msg {
    uint8_t version;
    uint8_t type;
    uint16_t seq;
    union {
        struct { uint32_t offset; const uint8_t *data; uint16_t len; } chunk; /* DEPLOY_CHUNK, SET_INPUT, DATA */
        struct { uint32_t length; uint32_t crc; } commit_req;                 /* DEPLOY_COMMIT */
        struct { uint32_t inference; } start;                                 /* START */
        struct { uint32_t offset; uint16_t length; } read;                    /* READ_OUTPUT, READ_NVM */
        struct { uint8_t status; uint8_t cmd; uint32_t detail; } ack;         /* ACK */
        struct {
            uint32_t fw, nvm, image, boots;
            uint16_t rx_errors;
            uint8_t window, flags;
            char name[WIRE_NAME_LEN + 1]; /* NUL-terminated */
        } identity;                                                           /* IDENTITY */
        struct { uint32_t boots, resume; uint8_t reason, flags; uint32_t cycles; } boot; /* BOOT (cycles: 0 from a 10-byte payload) */
        struct { uint32_t task, cycles; } task_done;                          /* TASK_DONE */
        struct { uint32_t progress; uint8_t kind; } commit;                   /* COMMIT */
        struct { uint32_t inference, length, crc; } result;                   /* RESULT */
        struct { uint8_t level; const uint8_t *text; uint16_t len; } log;     /* LOG */
    } u;
};

/* CRC-32 (IEEE, reflected, as zlib): crc = wire_crc32(0, p, n) for a whole
 * buffer; pass the previous value to continue over more bytes. */
uint32_t wire_crc32(uint32_t crc, const uint8_t *p, uint32_t n);

/* COBS. wire_cobs_encode writes the canonical encoding of src[0..n) (no
 * delimiter) to dst, which holds n + n/254 + 1 bytes; returns its length.
 * wire_cobs_decode decodes src[0..n) into dst (cap bytes; dst == src is
 * allowed), sets *out_len, returns 0 or WIRE_E_COBS / WIRE_E_SPACE. */
uint16_t wire_cobs_encode(const uint8_t *src, uint16_t n, uint8_t *dst);
int wire_cobs_decode(const uint8_t *src, uint16_t n, uint8_t *dst, uint16_t cap, uint16_t *out_len);

/* The incremental receiver: feed it bytes; it keeps one frame's bytes. */
struct wire_rx {
    uint8_t buf[WIRE_MAX_WIRE];
    uint16_t n;          /* bytes held of the current frame */
    uint8_t skip;        /* dropping bytes up to the next delimiter */
    uint8_t pad;
    const uint8_t *frame; /* the last complete frame (in buf), header to CRC */
    uint16_t frame_len;
    uint16_t errors;     /* frames dropped (saturating) */
};

#define WIRE_RX_NONE 0   /* no frame ended */
#define WIRE_RX_FRAME 1  /* rx->frame holds a frame with a good CRC */

void wire_rx_init(struct wire_rx *rx);
/* Feed one byte: WIRE_RX_NONE, WIRE_RX_FRAME, or a framing error (the frame
 * is dropped; the receiver goes on with the next one). */
int wire_rx_feed(struct wire_rx *rx, uint8_t byte);
/* Read bytes with getc (port_uart_getc: -1 when none) until a frame or an
 * error ends or no byte is left. */
int wire_rx_poll(struct wire_rx *rx, int (*getc)(void));

/* Checks a decoded frame's length and CRC, then parses it. */
int wire_parse(const uint8_t *frame, uint16_t n, struct wire_msg *m);
/* Writes the decoded frame of m (version WIRE_VERSION, header, payload,
 * CRC) into out[0..cap); sets *n. */
int wire_build(const struct wire_msg *m, uint8_t *out, uint16_t cap, uint16_t *n);
/* Writes the bytes on the wire of m (COBS and the delimiter) into out,
 * which holds WIRE_MAX_WIRE bytes; sets *n. */
int wire_encode(const struct wire_msg *m, uint8_t *out, uint16_t *n);
/* Sends m with write (port_uart_write): a 0x00, the COBS encoding, the
 * 0x00 delimiter (a board precedes every frame with a delimiter, so that
 * a frame cut by a brown-out or power-up noise on its TX line never
 * swallows the next one). Encodes on the fly: 254 bytes of stack. */
int wire_send(const struct wire_msg *m, void (*write)(const uint8_t *buf, uint32_t n));

/* The de-duplication history of the board (PROTOCOL.md, "Commands"): the
 * last WIRE_HISTORY commands executed, keyed by sequence number and the
 * CRC of their frame, with the ACK each got (194 bytes on the MSP430). With a
 * host window of W, at most 2W-2 other commands can run between a command
 * and its retransmission, so 2W entries never forget one too early. */
struct wire_hist_entry { uint16_t seq; uint8_t type, status; uint32_t crc, detail; };
struct wire_history { struct wire_hist_entry e[WIRE_HISTORY]; uint8_t next, count; };

void wire_history_clear(struct wire_history *h);
/* The entry of the frame (its seq and the CRC in its last 4 bytes), or NULL:
 * a frame found here is a retransmission, to be answered again, not
 * executed again. */
const struct wire_hist_entry *wire_history_find(const struct wire_history *h, const uint8_t *frame, uint16_t n);
/* Records an executed command and its ACK. */
void wire_history_put(struct wire_history *h, const uint8_t *frame, uint16_t n, uint8_t status, uint32_t detail);

#endif
