#!/usr/bin/env bash
# A sonobridge RP2040 image on an emulated RP2040, served on a pseudo-terminal like a board's
# /dev/ttyACM0. Prints the pty's path as its first line (as `sonobridge sim --pty` does), then
# runs until interrupted.
#
#   hardware/firmware/emu/run-emu.sh [BOARD] [IMAGE.bin] [PTY_LINK]
#
# BOARD is rp2040-reference (the default) or pic0rick; IMAGE defaults to that board's build
# (make -C hardware/firmware rp2040 / pic0rick); PTY_LINK to a fresh path under /tmp. Needs
# node and socat, and rp2040js installed here (make -C hardware/firmware emu / emu-pic0rick
# does all of it). BOOTROM overrides the boot ROM's path, FRONT_END the analogue side below.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
board=${1:-rp2040-reference}
# Each board's analogue side, which the emulator does not have (bridge.mjs lists the options):
# - rp2040-reference: HV sense (ADC 0, 25 V through the 11:1 divider: 25000 * 4096 /
#   (3300 * 11) = 2821), the temperature sensor (ADC 4, 27 degC = 0.706 V: 876), and a
#   synthetic echo on the ADC's D0-D9 (GPIO 0-9);
# - pic0rick: no HV sense; the temperature sensor; the echo on D0-D9 = GPIO 1-10; its ADC
#   clock (PWM on GPIO0) held still, as nothing in the emulator is clocked by it.
case "$board" in
    rp2040-reference) build=build-rp2040/sonobridge-rp2040.bin target=rp2040
                      front_end_default="--adc 0=2821 --adc 4=876 --echo-pins 0" ;;
    pic0rick)         build=build-pic0rick/sonobridge-pic0rick.bin target=pic0rick
                      front_end_default="--adc 4=876 --echo-pins 1 --still-clock 0" ;;
    *) echo "error: unknown board $board: rp2040-reference or pic0rick" >&2; exit 2 ;;
esac
image=$(realpath -m "${2:-$here/../$build}")
link=${3:-$(mktemp -u /tmp/sonobridge-rp2040-emu.XXXXXX)}
bootrom=$(realpath -m "${BOOTROM:-$here/../../../../shared/rp2040/bootrom-b1.mjs}")

for tool in node socat; do
    command -v "$tool" >/dev/null 2>&1 || {
        echo "error: $tool not found (Debian/Ubuntu: apt-get install -y nodejs socat)" >&2
        exit 1; }
done
[ -d "$here/node_modules/rp2040js" ] || {
    echo "error: rp2040js is not installed: make -C hardware/firmware emu-deps" >&2; exit 1; }
[ -f "$image" ] || { echo "error: no image at $image: make -C hardware/firmware $target" >&2; exit 1; }
[ -f "$bootrom" ] || { echo "error: no RP2040 boot ROM at $bootrom; set BOOTROM=..." >&2; exit 1; }

cd "$here"
front_end=${FRONT_END:-$front_end_default}
# the bridge creates this once the emulated USB CDC port is up: like a board's /dev/ttyACM0,
# the path is printed only once the board has enumerated (its 12 ms of emulated time take a
# tenth of a second of wall time or more, and bytes sent before then would meet no port)
ready=$(mktemp -u /tmp/sonobridge-rp2040-emu-ready.XXXXXX)
# raw, no echo: the pty is a byte pipe, as a CDC ACM port is
socat "PTY,link=$link,raw,echo=0" \
    "EXEC:node bridge.mjs $image $bootrom $front_end --ready-file $ready" &
socat_pid=$!
# socat does not pass its end on to the emulator: stop the emulator first, then socat
stop() {
    pkill -TERM -P "$socat_pid" 2>/dev/null || true
    kill "$socat_pid" 2>/dev/null || true
    wait "$socat_pid" 2>/dev/null || true
    rm -f "$link" "$ready"
}
trap 'stop; exit 0' INT TERM
trap stop EXIT
for _ in $(seq 6000); do  # up to 120 s: a loaded machine runs the emulator slower still
    [ -e "$ready" ] && [ -e "$link" ] && break
    kill -0 "$socat_pid" 2>/dev/null || {
        echo "error: the emulator ended before its USB port came up" >&2; exit 1; }
    sleep 0.02
done
[ -e "$ready" ] && [ -e "$link" ] || {
    echo "error: the emulated board's USB port did not come up within 120 s" >&2
    exit 1; }
rm -f "$ready"
echo "$link"
wait "$socat_pid"
