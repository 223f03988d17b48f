#!/usr/bin/env bash
# Flashes the STM32F405 firmware onto a board over ST-LINK, with openocd or
# st-flash (whichever is installed; openocd first), then resets it.
#
#   scripts/flash-stm32.sh [firmware/build/stm32f4/firmware.elf]
#
# The ELF holds the code, the plan image (0x08080000) and the input
# (0x080E0000); the NVM region is SRAM and is not programmed.
# OPENOCD_INTERFACE (default interface/stlink.cfg) picks another probe.
set -euo pipefail

elf="${1:-$(dirname "$0")/../firmware/build/stm32f4/firmware.elf}"
[ -f "$elf" ] || { echo "flash-stm32: $elf not found (make -C firmware stm32f4)" >&2; exit 1; }

if command -v openocd >/dev/null 2>&1; then
  exec openocd -f "${OPENOCD_INTERFACE:-interface/stlink.cfg}" -f target/stm32f4x.cfg \
    -c "program {$elf} verify reset exit"
elif command -v st-flash >/dev/null 2>&1; then
  command -v arm-none-eabi-objcopy >/dev/null 2>&1 || { echo "flash-stm32: arm-none-eabi-objcopy not found: install the Debian package binutils-arm-none-eabi" >&2; exit 1; }
  hex="$(mktemp --suffix=.hex)"
  trap 'rm -f "$hex"' EXIT
  arm-none-eabi-objcopy -O ihex "$elf" "$hex"
  st-flash --reset --format ihex write "$hex"
else
  echo "flash-stm32: neither openocd nor st-flash found: install the Debian package openocd (or stlink-tools)" >&2
  exit 1
fi
