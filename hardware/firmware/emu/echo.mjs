// A synthetic echo on the emulated board's parallel ADC pins: the analogue front end an
// emulated RP2040 does not have.
//
// Whatever PIO program reads the ADC's data pins (`in pins, ...`) sees, at each emulated
// instant, the 10-bit code of an echo train that starts when a pulser raises PIO IRQ 4 (both
// RP2040 ports start their capture on it). The firmware's PIO, DMA, packing and protocol code
// run unchanged; only the pins' values come from here instead of a converter.
import { StateMachine } from 'rp2040js';

/** Reflectors as (depth in m, amplitude in codes): the wire phantom's first five wires. */
export const REFLECTORS = [[0.01, 300], [0.02, 240], [0.03, 190], [0.04, 150], [0.05, 120]];
export const SOUND_SPEED_M_S = 1540;
export const CENTER_FREQ_HZ = 3.5e6;
const CYCLES = 2; // Gaussian envelope width, in periods of the centre frequency
const NOISE_CODES = 3;
const MIDSCALE = 512;
const BITS = 10;
const START_IRQ = 4;

/** The code the converter would hold `t` seconds after the transmit edge. */
export function echoCode(t, sampleKey) {
  let v = 0;
  const sigma = CYCLES / CENTER_FREQ_HZ / 2.355; // FWHM of CYCLES periods
  for (const [depth, amplitude] of REFLECTORS) {
    const dt = t - (2 * depth) / SOUND_SPEED_M_S;
    if (Math.abs(dt) < 4 * sigma) {
      v += amplitude * Math.exp((-dt * dt) / (2 * sigma * sigma)) *
        Math.cos(2 * Math.PI * CENTER_FREQ_HZ * dt);
    }
  }
  // deterministic noise: a hash of the sample's emulated time
  const h = Math.imul(sampleKey ^ 0x9e3779b9, 0x85ebca6b) >>> 0;
  v += ((h >>> 16) / 65536 - 0.5) * 2 * NOISE_CODES;
  return Math.max(0, Math.min((1 << BITS) - 1, Math.round(MIDSCALE + v)));
}

/** Drive ADC data bits D0.. from GPIO `firstPin` with the echo, timed to the PIO's cycle. */
export function attachSyntheticEcho(sim, firstPin) {
  const mcu = sim.rp2040;
  const mask = ((1 << BITS) - 1) << firstPin;
  let transmitNanos = -1;
  for (const pio of mcu.pio) {
    const irqUpdated = pio.irqUpdated.bind(pio);
    pio.irqUpdated = () => {
      if (pio.irq & (1 << START_IRQ)) {
        transmitNanos = mcu.pioNanos; // the cycle the pulser raised it (lockstep.mjs)
      }
      irqUpdated();
    };
  }
  Object.defineProperty(StateMachine.prototype, 'inPins', {
    configurable: true,
    get() {
      let gpio = mcu.gpioValues;
      if (transmitNanos >= 0) {
        const nanos = mcu.pioNanos - transmitNanos;
        gpio = (gpio & ~mask) | ((echoCode(nanos * 1e-9, Math.round(nanos)) << firstPin) & mask);
      }
      const { inBase } = this;
      return inBase ? (gpio << (32 - inBase)) | (gpio >>> inBase) : gpio;
    },
  });
}
