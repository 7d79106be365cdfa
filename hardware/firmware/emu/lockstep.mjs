// Runs an rp2040js RP2040 with its PIO blocks stepped in lockstep with the CPU's cycles.
//
// rp2040js 1.4.1 runs PIO in batches of 1000 instructions per event-loop turn, unrelated to
// emulated time: a capture that takes 78 us on a board took longer than the firmware's 200 ms
// (emulated) watchdog. Here every CPU cycle advances each enabled state machine by one clock
// of its divider, as on the chip, so the firmware's timeouts and the PIO agree.
import { Simulator } from 'rp2040js';

// rp2040js does not model the PLLs: it counts every CPU cycle as 8 ns (125 MHz). The sonobridge
// image runs clk_sys at 120 MHz (ports/rp2040/main.c: the ADC clock is clk_sys / 2), so this
// loop counts cycles at that rate: the firmware's timer, its PRF and the PIO's sample rate
// then agree with the chip's.
export const CLK_SYS_HZ = 120e6;
const CYCLE_NANOS = 1e9 / CLK_SYS_HZ;
const BATCH_CYCLES = 200000; // per event-loop turn, so stdin and timers get their turn
const IDLE_STEP_CYCLES = 4; // a waiting CPU advances time in small steps while PIO runs

/** Replace each PIO block's free-running loop with stepping from `step()`. */
function detachPio(mcu) {
  for (const pio of mcu.pio) {
    pio.run = () => {}; // the block's own loop, started when a state machine is enabled
    pio.stopped = false;
    for (const sm of pio.machines) {
      sm.divAcc = 0;
    }
  }
}

/**
 * Advance every enabled state machine by `cycles` clk_sys cycles from emulated time `nanos`,
 * honouring each divider. `mcu.pioNanos` holds the time of the cycle being stepped, so what a
 * state machine reads from its pins (echo.mjs) and the edges it drives (--trace-pin in
 * bridge.mjs) are timed to the cycle, not to the instruction.
 */
function stepPio(mcu, cycles, nanos) {
  const enabled = [];
  for (const pio of mcu.pio) {
    for (const sm of pio.machines) {
      if (sm.enabled) {
        enabled.push([pio, sm, Math.max(1, sm.clockDivInt + sm.clockDivFrac / 256)]);
      }
    }
  }
  if (!enabled.length) {
    return;
  }
  for (let c = 0; c < cycles; c++) {
    mcu.pioNanos = nanos + c * CYCLE_NANOS;
    for (const [, sm, period] of enabled) {
      sm.divAcc += 1;
      if (sm.divAcc >= period) {
        sm.divAcc -= period;
        sm.step();
      }
    }
  }
  for (const pio of mcu.pio) {
    pio.checkChangedPins();
  }
}

/** A Simulator whose execute() keeps the PIO in lockstep with the CPU. */
export function lockstepSimulator() {
  const sim = new Simulator();
  const mcu = sim.rp2040;
  detachPio(mcu);
  mcu.pioNanos = 0;
  sim.execute = function execute() {
    const { clock } = this;
    this.executeTimer = null;
    this.stopped = false;
    let done = 0;
    while (done < BATCH_CYCLES && !this.stopped) {
      let cycles;
      if (mcu.core.waiting) {
        const pioBusy = mcu.pio.some((p) => p.machines.some((sm) => sm.enabled));
        cycles = pioBusy
          ? IDLE_STEP_CYCLES
          : Math.max(1, Math.round(clock.nanosToNextAlarm / CYCLE_NANOS));
      } else {
        cycles = mcu.core.executeInstruction();
      }
      // PIO first, then the clock: a word the PIO pushes raises its DMA request, and the tick
      // runs that transfer, so the 4-word RX FIFO drains as on the chip instead of stalling
      mcu.pioNanos = clock.nanos; // "now" for pin listeners between PIO cycles too
      stepPio(mcu, cycles, clock.nanos);
      clock.tick(cycles * CYCLE_NANOS);
      done += cycles;
    }
    if (!this.stopped) {
      this.executeTimer = setTimeout(() => this.execute(), 0);
    }
  };
  return sim;
}
