/*
 * crc32.c - CRC-32 with a 16-entry table (64 bytes of flash, two lookups a
 * byte): small enough for the MSP430, fast enough to check an image at boot.
 */
#include "crc32.h"

static const uint32_t nibble[16] = {
    0x00000000u, 0x1DB71064u, 0x3B6E20C8u, 0x26D930ACu,
    0x76DC4190u, 0x6B6B51F4u, 0x4DB26158u, 0x5005713Cu,
    0xEDB88320u, 0xF00F9344u, 0xD6D6A3E8u, 0xCB61B38Cu,
    0x9B64C2B0u, 0x86D3D2D4u, 0xA00AE278u, 0xBDBDF21Cu,
};

uint32_t ih_crc32_update(uint32_t crc, const uint8_t *data, uint32_t n)
{
    uint32_t i;
    crc = ~crc;
    for (i = 0; i < n; i++) {
        crc ^= data[i];
        crc = (crc >> 4) ^ nibble[crc & 0x0Fu];
        crc = (crc >> 4) ^ nibble[crc & 0x0Fu];
    }
    return ~crc;
}

uint32_t ih_crc32(const uint8_t *data, uint32_t n)
{
    return ih_crc32_update(0, data, n);
}
