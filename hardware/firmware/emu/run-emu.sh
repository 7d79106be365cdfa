#!/usr/bin/env bash
# The sonobridge RP2040 image on an emulated RP2040, served on a pseudo-terminal like a board's
# /dev/ttyACM0. Prints the pty's path as its first line (as `sonobridge sim --pty` does), then
# runs until interrupted.
#
#   hardware/firmware/emu/run-emu.sh [IMAGE.bin] [PTY_LINK]
#
# IMAGE defaults to build-rp2040/sonobridge-rp2040.bin (make -C hardware/firmware rp2040);
# PTY_LINK to a fresh path under /tmp. Needs node and socat, and rp2040js installed here
# (make -C hardware/firmware emu does all of it). BOOTROM overrides the boot ROM's path.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
image=$(realpath "${1:-$here/../build-rp2040/sonobridge-rp2040.bin}")
link=${2:-$(mktemp -u /tmp/sonobridge-rp2040-emu.XXXXXX)}
bootrom=$(realpath "${BOOTROM:-$here/../../../../shared/rp2040/bootrom-b1.mjs}")

for tool in node socat; do
    command -v "$tool" >/dev/null 2>&1 || {
        echo "error: $tool not found (Debian/Ubuntu: apt-get install -y nodejs socat)" >&2
        exit 1; }
done
[ -d "$here/node_modules/rp2040js" ] || {
    echo "error: rp2040js is not installed: make -C hardware/firmware emu-deps" >&2; exit 1; }
[ -f "$image" ] || { echo "error: no image at $image: make -C hardware/firmware rp2040" >&2; exit 1; }
[ -f "$bootrom" ] || { echo "error: no RP2040 boot ROM at $bootrom; set BOOTROM=..." >&2; exit 1; }

cd "$here"
# The reference board's analogue side, which the emulator does not have: HV sense (ADC 0,
# 25 V through the 11:1 divider: 25000 * 4096 / (3300 * 11) = 2821), the temperature sensor
# (ADC 4, 27 degC = 0.706 V: 876), and a synthetic echo on the ADC's D0-D9 (GPIO 0-9).
# FRONT_END="..." overrides them (bridge.mjs lists the options).
front_end=${FRONT_END:-"--adc 0=2821 --adc 4=876 --echo-pins 0"}
# raw, no echo: the pty is a byte pipe, as a CDC ACM port is
socat "PTY,link=$link,raw,echo=0" "EXEC:node bridge.mjs $image $bootrom $front_end" &
socat_pid=$!
trap 'kill "$socat_pid" 2>/dev/null; wait "$socat_pid" 2>/dev/null; rm -f "$link"; exit 0' INT TERM
for _ in $(seq 200); do
    [ -e "$link" ] && break
    kill -0 "$socat_pid" 2>/dev/null || { echo "error: socat ended before the pty appeared" >&2; exit 1; }
    sleep 0.01
done
[ -e "$link" ] || { echo "error: the pty did not appear at $link" >&2; kill "$socat_pid"; exit 1; }
echo "$link"
wait "$socat_pid"
