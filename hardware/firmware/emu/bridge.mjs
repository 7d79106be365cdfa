// The sonobridge RP2040 image on an emulated RP2040 (rp2040js): its USB CDC port is this
// process's stdin (host -> device) and stdout (device -> host). run-emu.sh links a pty to them.
//
//   node bridge.mjs IMAGE.bin BOOTROM.mjs [--adc CHANNEL=CODE ...] [--echo-pins FIRST]
//                   [--trace-pin GPIO ...] [--ready-file PATH] [--still-clock GPIO]
//
// --adc holds an RP2040 ADC input (0-3: GPIO26-29, 4: the temperature sensor) at a 12-bit
// code, and --echo-pins drives a synthetic echo (echo.mjs) on the parallel ADC's D0-D9 from
// GPIO FIRST: the analogue side a board has and the emulator does not. run-emu.sh passes the
// reference board's. --trace-pin writes every edge of that GPIO to stderr as
// `trace GPIO LEVEL NANOS` (emulated time, to the clk_sys cycle): the pulser's outputs, which
// a board shows on a scope. --ready-file is created once the USB CDC port is up, as a
// board's /dev/ttyACM0 appears only once it has enumerated (run-emu.sh waits for it).
// --still-clock keeps the PWM slice that drives GPIO from toggling its pin: a converter's
// clock (the pic0rick's on GPIO0) feeds nothing in the emulator, and rp2040js schedules two
// events per period for it, which at 60 MHz left the emulated chip at 1/140 of real time.
// The slice's registers and counter still work as the firmware wrote them.
//
// The image is the very .bin that `make -C hardware/firmware rp2040` writes into the UF2.
// PIO runs in lockstep with the CPU (lockstep.mjs). Emulated time is not wall time (about
// 0.1-0.2x): the host's timeouts must allow for it (hardware/README.md).
import { readFileSync, writeFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { GPIOPinState, USBCDC } from 'rp2040js';

import { attachSyntheticEcho } from './echo.mjs';
import { lockstepSimulator } from './lockstep.mjs';

const usage = 'usage: node bridge.mjs IMAGE.bin BOOTROM.mjs [--adc CHANNEL=CODE ...] ' +
  '[--echo-pins FIRST] [--trace-pin GPIO ...] [--ready-file PATH] [--still-clock GPIO]\n';
const [imagePath, bootromPath, ...options] = process.argv.slice(2);
if (!imagePath || !bootromPath) {
  process.stderr.write(usage);
  process.exit(2);
}
const adcSettings = [];
let echoPins = null;
const tracePins = [];
let readyFile = null;
const stillClocks = [];
for (let i = 0; i < options.length; i += 2) {
  const [flag, value] = [options[i], options[i + 1]];
  if (flag === '--adc' && value) {
    const [channel, code] = value.split('=').map(Number);
    if (!(channel >= 0 && channel <= 4 && code >= 0 && code <= 4095)) {
      process.stderr.write(`bad --adc ${value}: give CHANNEL=CODE, channel 0-4, code 0-4095\n`);
      process.exit(2);
    }
    adcSettings.push([channel, code]);
  } else if (flag === '--echo-pins' && /^\d+$/.test(value ?? '') && Number(value) <= 20) {
    echoPins = Number(value);
  } else if (flag === '--trace-pin' && /^\d+$/.test(value ?? '') && Number(value) < 30) {
    tracePins.push(Number(value));
  } else if (flag === '--ready-file' && value) {
    readyFile = value;
  } else if (flag === '--still-clock' && /^\d+$/.test(value ?? '') && Number(value) < 30) {
    stillClocks.push(Number(value));
  } else {
    process.stderr.write(usage);
    process.exit(2);
  }
}
const { bootromB1 } = await import(pathToFileURL(resolve(bootromPath)).href);

const sim = lockstepSimulator();
const mcu = sim.rp2040;
// stdout carries the board's bytes: the emulator's own log goes to stderr, warnings and up
const log = (level) => (component, message) =>
  process.stderr.write(`[rp2040js ${level}] ${component}: ${message}\n`);
mcu.logger = { debug() {}, info() {}, warn: log('warn'), error: log('error') };
mcu.loadBootrom(bootromB1);
mcu.flash.set(readFileSync(imagePath), 0);
mcu.core.PC = 0x10000000;
for (const [channel, code] of adcSettings) {
  mcu.adc.channelValues[channel] = code;
}
if (echoPins !== null) {
  attachSyntheticEcho(sim, echoPins);
}
for (const gpio of stillClocks) {
  for (const channel of mcu.pwm.channels) {
    if ([channel.pinA1, channel.pinA2, channel.pinB1, channel.pinB2].includes(gpio)) {
      for (const alarm of [channel.alarmA, channel.alarmB, channel.alarmBottom]) {
        alarm.schedule = () => {};
      }
    }
  }
}
for (const gpio of tracePins) {
  let level = null;
  mcu.gpio[gpio].addListener((state) => {
    const now = state === GPIOPinState.High ? 1 : 0;
    if (now !== level) {
      level = now;
      process.stderr.write(`trace ${gpio} ${now} ${Math.round(mcu.pioNanos)}\n`);
    }
  });
}

const cdc = new USBCDC(mcu.usbCtrl);
// Host bytes wait here, not in USBCDC's 512-byte FIFO (which drops what does not fit). The
// device's OUT read is held while nothing waits: answering it at once with an empty packet
// (as USBCDC does) makes TinyUSB re-arm every 10 us, halving throughput and keeping the
// emulator from skipping idle time.
const pending = [];
let heldRead = null;
function completeRead(endpoint, size) {
  const n = Math.min(size, pending.length);
  mcu.usbCtrl.endpointReadDone(endpoint, Uint8Array.from(pending.splice(0, n)));
}
mcu.usbCtrl.onEndpointRead = (endpoint, size) => {
  if (endpoint !== cdc.outEndpoint) {
    return;
  }
  if (pending.length) {
    completeRead(endpoint, size);
  } else {
    heldRead = [endpoint, size];
  }
};
cdc.onDeviceConnected = () => {
  process.stderr.write(`rp2040 emulator: USB CDC up after ${(sim.clock.nanos / 1e6).toFixed(1)} ms of emulated time\n`);
  if (readyFile) {
    writeFileSync(readyFile, '');
  }
};
cdc.onSerialData = (buffer) => {
  process.stdout.write(Buffer.from(buffer));
};
process.stdin.on('data', (chunk) => {
  for (const byte of chunk) {
    pending.push(byte);
  }
  if (heldRead) {
    const [endpoint, size] = heldRead;
    heldRead = null;
    completeRead(endpoint, size);
  }
});
// the pty's other end is gone: nothing more to serve
process.stdin.on('end', () => process.exit(0));
process.stdin.on('close', () => process.exit(0));
process.stdout.on('error', () => process.exit(0));
sim.execute();
