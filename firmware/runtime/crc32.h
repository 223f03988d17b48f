/*
 * crc32.h - CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320, as zlib and
 * Go's hash/crc32.ChecksumIEEE), the checksum of the plan image.
 */
#ifndef IH_CRC32_H
#define IH_CRC32_H

#include <stdint.h>

/* The CRC-32 of n bytes. */
uint32_t ih_crc32(const uint8_t *data, uint32_t n);

/* Incremental form: crc = ih_crc32_update(0, a, na); crc = ih_crc32_update(crc, b, nb). */
uint32_t ih_crc32_update(uint32_t crc, const uint8_t *data, uint32_t n);

#endif
