#!/usr/bin/env bash
# Installs the Debian packages the firmware builds need: the Arm embedded tool
# chain and newlib (make -C firmware stm32f4), clang (make -C firmware
# msp430-check) and QEMU (the STM32 firmware on netduinoplus2). Idempotent:
# packages already installed are skipped. Run as root (or with sudo on PATH).
#
#   scripts/install-toolchains.sh            the packages above
#   scripts/install-toolchains.sh --flash    also openocd, stlink-tools, mspdebug
#                                            (scripts/flash-stm32.sh, flash-msp430.sh)
#
# TI's MSP430 GCC (msp430-elf-gcc, for make -C firmware msp430) is not a Debian
# package: install it from https://www.ti.com/tool/MSP430-GCC-OPENSOURCE.
set -euo pipefail

pkgs=(make gcc gcc-arm-none-eabi libnewlib-arm-none-eabi binutils-arm-none-eabi clang qemu-system-arm)
for arg in "$@"; do
  case "$arg" in
    --flash) pkgs+=(openocd stlink-tools mspdebug) ;;
    -h|--help) awk 'NR > 1 && /^#/ { sub(/^# ?/, ""); print; next } NR > 1 { exit }' "$0"; exit 0 ;;
    *) echo "install-toolchains: unknown option $arg (try --help)" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-toolchains: all installed (${pkgs[*]})"
else
  sudo=()
  if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null 2>&1 || { echo "install-toolchains: run as root to install: ${missing[*]}" >&2; exit 1; }
    sudo=(sudo)
  fi
  echo "install-toolchains: installing ${missing[*]}"
  "${sudo[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

if command -v msp430-elf-gcc >/dev/null 2>&1; then
  echo "install-toolchains: msp430-elf-gcc found: make -C firmware msp430 can link the MSP430 firmware"
else
  echo "install-toolchains: msp430-elf-gcc not found (TI's MSP430 GCC, not in Debian): make -C firmware msp430 needs it; make -C firmware msp430-check does not"
fi
