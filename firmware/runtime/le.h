/*
 * le.h - little-endian loads and stores, and int32 arithmetic that wraps.
 *
 * The plan image and the NVM layout are little-endian and records are not
 * necessarily aligned for the CPU, so every multi-byte field is read byte by
 * byte. Go's int32 arithmetic wraps modulo 2^32; C's signed overflow is
 * undefined, so the kernels add and multiply through uint32_t and convert
 * back with ih_i32 (exact two's complement, no implementation-defined
 * conversion).
 */
#ifndef IH_LE_H
#define IH_LE_H

#include <stdint.h>

static inline uint16_t ih_rd16(const uint8_t *p)
{
    return (uint16_t)((uint16_t)p[0] | (uint16_t)((uint16_t)p[1] << 8));
}

static inline uint32_t ih_rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static inline void ih_wr16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)(v & 0xFFu);
    p[1] = (uint8_t)(v >> 8);
}

static inline void ih_wr32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v & 0xFFu);
    p[1] = (uint8_t)((v >> 8) & 0xFFu);
    p[2] = (uint8_t)((v >> 16) & 0xFFu);
    p[3] = (uint8_t)(v >> 24);
}

/* The int32 whose two's complement bits are u. */
static inline int32_t ih_i32(uint32_t u)
{
    if (u <= (uint32_t)INT32_MAX) {
        return (int32_t)u;
    }
    return (int32_t)(u - (uint32_t)0x80000000u) - INT32_MAX - 1;
}

static inline int32_t ih_rdi32(const uint8_t *p) { return ih_i32(ih_rd32(p)); }

/* a + b, a - b, a * b modulo 2^32, as Go's int32 operators. */
static inline int32_t ih_add32(int32_t a, int32_t b) { return ih_i32((uint32_t)a + (uint32_t)b); }
static inline int32_t ih_sub32(int32_t a, int32_t b) { return ih_i32((uint32_t)a - (uint32_t)b); }
static inline int32_t ih_mul32(int32_t a, int32_t b) { return ih_i32((uint32_t)a * (uint32_t)b); }

/* Go's int32(uint32(x) << s): 0 once s reaches 32. */
static inline int32_t ih_shl32(int32_t x, uint32_t s)
{
    return s >= 32u ? 0 : ih_i32((uint32_t)x << s);
}

/* Go's x >> s for an int32 x (arithmetic; any s). */
static inline int32_t ih_asr32(int32_t x, uint32_t s)
{
    if (s >= 31u) {
        return x < 0 ? -1 : 0;
    }
    if (x < 0) {
        return (int32_t)~((~x) >> s);
    }
    return x >> s;
}

static inline int32_t ih_clamp32(int32_t v, int32_t lo, int32_t hi)
{
    if (v < lo) {
        return lo;
    }
    if (v > hi) {
        return hi;
    }
    return v;
}

#endif
