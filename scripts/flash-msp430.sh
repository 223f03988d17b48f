#!/usr/bin/env bash
# Flashes the MSP430FR5994 firmware (make -C firmware msp430, TI's GCC) onto a
# LaunchPad with mspdebug, then lets it run.
#
#   scripts/flash-msp430.sh [firmware/build/msp430fr5994/firmware.elf]
#
# MSPDEBUG_DRIVER picks mspdebug's driver (default tilib: the LaunchPad's
# eZ-FET through TI's libmsp430.so, which Debian does not ship; ezfet or rf2500
# for other probes). The FRAM NVM section is NOLOAD and is not programmed.
set -euo pipefail

elf="${1:-$(dirname "$0")/../firmware/build/msp430fr5994/firmware.elf}"
[ -f "$elf" ] || { echo "flash-msp430: $elf not found (make -C firmware msp430)" >&2; exit 1; }
command -v mspdebug >/dev/null 2>&1 || { echo "flash-msp430: mspdebug not found: install the Debian package mspdebug" >&2; exit 1; }

exec mspdebug "${MSPDEBUG_DRIVER:-tilib}" "prog $elf" "run"
