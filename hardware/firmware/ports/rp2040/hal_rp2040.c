/*
 * The HAL for the RP2040 reference board, on the Pico SDK (see board_rp2040.c for what it
 * announces and hardware/README.md for the wiring). Written against the SDK's documented API
 * and built in CI (make -C hardware/firmware rp2040), not yet run on hardware. The core it
 * drives is tested on the host.
 *
 * Timing of one firing (sb_device_poll):
 *   adc_arm     DMA armed on the ADC state machine's RX FIFO; TGC DMA table prepared
 *   pulse_fire  the pulser state machine gets (cycles, half period); its IRQ 4 starts the
 *               capture; the TGC DMA is started by the CPU right after (about 100 ns later)
 *   adc_wait    blocks until the capture DMA has its last word (at most the window, which
 *               CONFIGURE validation keeps shorter than the pulse period)
 */
#include <string.h>

#include "hal_rp2040.h"

#include "hardware/adc.h"
#include "hardware/clocks.h"
#include "hardware/dma.h"
#include "hardware/pwm.h"
#include "hardware/gpio.h"
#include "hardware/pio.h"
#include "hardware/spi.h"
#include "pico/stdlib.h"
#include "sb_frontend.pio.h"

/* the board's wiring: pins_rp2040_reference.h or pins_pic0rick.h (CMake's SB_BOARD) */
#include SB_PINS_HEADER

#define TEMP_SENSOR_INPUT 4

#define PORT_SYS_CLK_HZ 120000000u
/* conversions between the first transmit edge and the first kept sample, beyond the start
   delay: the ADC10065's pipeline (6 clocks) plus the delay loop's extra period. This is the
   datasheet figure; calibrate it on a board with a reflector at a known depth. */
#define ADC_LATENCY_SAMPLES 7u

#define TGC_MAX_STEPS (2u * SB_TGC_TABLE_MAX)
/* the pulser program's damping loop count: PORT_DAMP_NS of PDAMP after the burst */
#define DAMP_CLOCKS ((uint32_t)((uint64_t)PORT_DAMP_NS * PORT_SYS_CLK_HZ / 1000000000u))

typedef struct {
    PIO pio;
    uint sm_pulser, sm_adc;
    uint off_pulser, off_adc;
    int dma_adc, dma_tgc;
    int tgc_timer;
    uint16_t tgc_codes[SB_TGC_TABLE_MAX];
    size_t tgc_n;
    uint16_t dac_words[TGC_MAX_STEPS]; /* MCP4812 command words for one firing */
    uint32_t dac_steps;
    sb_ring_t *ring;
    uint32_t capture_words;
} rp_hal_t;

static rp_hal_t R;

static uint64_t now_us(void *ctx)
{
    (void)ctx;
    return time_us_64();
}

static void link_write(void *ctx, const uint8_t *data, size_t len)
{
    (void)ctx;
    (void)sb_ring_write(R.ring, data, (uint32_t)len); /* the core checked link_space */
}

static size_t link_space(void *ctx)
{
    (void)ctx;
    return sb_ring_space(R.ring);
}

static uint16_t link_fill(void *ctx)
{
    (void)ctx;
    return (uint16_t)((uint64_t)sb_ring_used(R.ring) * 1000u / R.ring->cap);
}

/* MCP4812 write to channel A: gain 1x (2.048 V full scale), active, 10-bit code in 11..2 */
static uint16_t dac_word(uint16_t code)
{
    return (uint16_t)(0x3000u | ((code & 0x3FFu) << 2));
}

static void tgc_write(void *ctx, const uint16_t *codes, size_t n)
{
    (void)ctx;
    if (n > SB_TGC_TABLE_MAX)
        n = SB_TGC_TABLE_MAX;
    memcpy(R.tgc_codes, codes, n * sizeof codes[0]);
    R.tgc_n = n;
    /* hold the start of the curve until the first firing */
    spi_write16_blocking(PORT_DAC_SPI, &(uint16_t){dac_word(codes[0])}, 1);
}

static void adc_arm(void *ctx, uint16_t *codes, uint32_t n, uint32_t delay, uint8_t dec)
{
    dma_channel_config c;
    uint32_t i, k0, steps, window_ticks, num, den;
    (void)ctx;

    /* capture: n samples, two per 32-bit word (n is even for PACKED12; an odd n gets one
       extra sample, which the buffer has room for) */
    R.capture_words = (n + 1u) / 2u;
    c = dma_channel_get_default_config(R.dma_adc);
    channel_config_set_transfer_data_size(&c, DMA_SIZE_32);
    channel_config_set_read_increment(&c, false);
    channel_config_set_write_increment(&c, true);
    channel_config_set_dreq(&c, pio_get_dreq(R.pio, R.sm_adc, false));
    dma_channel_configure(R.dma_adc, &c, codes, &R.pio->rxf[R.sm_adc], R.capture_words, true);

    pio_sm_set_clkdiv_int_frac(R.pio, R.sm_adc, dec, 0);
    pio_sm_clear_fifos(R.pio, R.sm_adc);
    pio_sm_restart(R.pio, R.sm_adc);
    pio_sm_exec(R.pio, R.sm_adc, pio_encode_jmp(R.off_adc));
    /* the latency is in conversions; the delay loop counts kept samples */
    pio_sm_put(R.pio, R.sm_adc, delay + ADC_LATENCY_SAMPLES / (dec ? dec : 1u));
    pio_sm_put(R.pio, R.sm_adc, 2u * R.capture_words - 1u);
    pio_sm_set_enabled(R.pio, R.sm_adc, true);

    /* TGC: the curve's entries are spread over the line (from sample 0, after the delay);
       entries that fall in the delay hold the first code, so one DMA stream paced from the
       pulse covers delay + line */
    k0 = R.tgc_n > 1 ? (uint32_t)((uint64_t)delay * (R.tgc_n - 1u) / (n > 1 ? n - 1u : 1u)) : 0;
    if (k0 + R.tgc_n > TGC_MAX_STEPS)
        k0 = TGC_MAX_STEPS - R.tgc_n;
    for (i = 0; i < k0; i++)
        R.dac_words[i] = dac_word(R.tgc_codes[0]);
    for (i = 0; i < R.tgc_n; i++)
        R.dac_words[k0 + i] = dac_word(R.tgc_codes[i]);
    steps = k0 + (uint32_t)R.tgc_n;
    R.dac_steps = steps;
    /* pace: steps over (delay + n) * dec ADC periods = 2 * (delay + n) * dec clk_sys cycles;
       the DMA timer runs at clk_sys * num / den with 16-bit num and den */
    window_ticks = 2u * (delay + n) * dec;
    num = steps;
    den = window_ticks;
    while (den > 0xFFFFu) {
        den >>= 1;
        num = (num + 1u) >> 1;
    }
    dma_timer_set_fraction((uint)R.tgc_timer, (uint16_t)(num ? num : 1u), (uint16_t)den);
}

static void pulse_fire(void *ctx, uint32_t freq_hz, uint8_t cycles)
{
    dma_channel_config c;
    uint32_t half = PORT_SYS_CLK_HZ / (2u * (freq_hz ? freq_hz : 1u));
    (void)ctx;
    if (half < 3u)
        half = 3u;
    gpio_put(PIN_PULSER_OE, 1);
    pio_sm_put(R.pio, R.sm_pulser, DAMP_CLOCKS);
    pio_sm_put(R.pio, R.sm_pulser, (uint32_t)(cycles ? cycles : 1u) - 1u);
    pio_sm_put(R.pio, R.sm_pulser, half - 2u);

    c = dma_channel_get_default_config(R.dma_tgc);
    channel_config_set_transfer_data_size(&c, DMA_SIZE_16);
    channel_config_set_read_increment(&c, true);
    channel_config_set_write_increment(&c, false);
    channel_config_set_dreq(&c, dma_get_timer_dreq((uint)R.tgc_timer));
    dma_channel_configure(R.dma_tgc, &c, &spi_get_hw(PORT_DAC_SPI)->dr, R.dac_words, R.dac_steps, true);
}

static int adc_wait(void *ctx)
{
    /* the window is shorter than the pulse period (CONFIGURE validation, at most 100 ms at
       10 Hz); 200 ms without the last word means the data path is broken */
    absolute_time_t deadline = make_timeout_time_us(200000u);
    (void)ctx;
    while (dma_channel_is_busy(R.dma_adc)) {
        if (absolute_time_diff_us(get_absolute_time(), deadline) < 0) {
            dma_channel_abort(R.dma_adc);
            pio_sm_set_enabled(R.pio, R.sm_adc, false);
            gpio_put(PIN_PULSER_OE, 0);
            return 1; /* no samples: the ADC clock or data path is broken */
        }
    }
    pio_sm_set_enabled(R.pio, R.sm_adc, false);
    gpio_put(PIN_PULSER_OE, 0);
    return 0;
}

#ifdef PIN_HV_SENSE
static uint32_t hv_read_mv(void *ctx)
{
    (void)ctx;
    adc_select_input(HV_SENSE_INPUT);
    return (uint32_t)adc_read() * 3300u * HV_DIVIDER / 4096u;
}
#endif

static int16_t temperature_cdeg(void *ctx)
{
    /* RP2040 datasheet: T = 27 - (V - 0.706) / 0.001721, in integers (uV and 0.01 degC) */
    int32_t uv;
    (void)ctx;
    adc_select_input(TEMP_SENSOR_INPUT);
    uv = (int32_t)((uint32_t)adc_read() * 3300000u / 4096u);
    return (int16_t)(2700 - (uv - 706000) * 100 / 1721);
}

static uint8_t faults(void *ctx)
{
    uint8_t f = 0;
#ifdef PIN_HV_SENSE
    uint32_t hv = hv_read_mv(ctx);
    uint32_t want = PORT_BOARD.info.hv_min_mv;
    if (hv < want * 9u / 10u || hv > want * 11u / 10u)
        f |= SB_FAULT_HV;
#endif
    if (temperature_cdeg(ctx) > 7000)
        f |= SB_FAULT_OVERTEMP;
    return f;
}

static void front_end_reset(void *ctx)
{
    (void)ctx;
    gpio_put(PIN_PULSER_OE, 0);
    pio_sm_set_enabled(R.pio, R.sm_adc, false);
    dma_channel_abort(R.dma_adc);
    dma_channel_abort(R.dma_tgc);
}

void hal_rp2040_init(sb_hal_t *hal, sb_ring_t *ring)
{
    pio_sm_config c;
    uint pin;

    R.ring = ring;
    R.pio = pio0;

    /* ADC clock: clk_sys / 2, running always, as a pipelined converter needs */
#if defined(PORT_ADC_CLOCK_GPOUT)
    clock_gpio_init(PIN_ADC_CLK, CLOCKS_CLK_GPOUT0_CTRL_AUXSRC_VALUE_CLK_SYS, 2);
#elif defined(PORT_ADC_CLOCK_PWM)
    {
        /* a PWM slice counting 0, 1 at clk_sys, high for one count: clk_sys / 2, 50 % duty */
        pwm_config pc = pwm_get_default_config();
        gpio_set_function(PIN_ADC_CLK, GPIO_FUNC_PWM);
        pwm_config_set_clkdiv_int(&pc, 1);
        pwm_config_set_wrap(&pc, 1);
        pwm_init(pwm_gpio_to_slice_num(PIN_ADC_CLK), &pc, true);
        pwm_set_gpio_level(PIN_ADC_CLK, 1);
    }
#else
#error "the board header must say how the ADC is clocked"
#endif

    /* pulser on PIO: INA, INB as side-set; OE and HV enable as plain GPIOs */
    R.off_pulser = pio_add_program(R.pio, &sb_pulser_program);
    R.sm_pulser = (uint)pio_claim_unused_sm(R.pio, true);
    c = sb_pulser_program_get_default_config(R.off_pulser);
    sm_config_set_sideset_pins(&c, PIN_PULSE_P);
    pio_gpio_init(R.pio, PIN_PULSE_P);
    pio_gpio_init(R.pio, PIN_PULSE_P + 1);
    pio_sm_set_pins_with_mask(R.pio, R.sm_pulser, 0, 3u << PIN_PULSE_P);
    pio_sm_set_consecutive_pindirs(R.pio, R.sm_pulser, PIN_PULSE_P, 2, true);
#ifdef PIN_PDAMP
    /* the damping switch is the program's `set` pin */
    sm_config_set_set_pins(&c, PIN_PDAMP, 1);
    pio_gpio_init(R.pio, PIN_PDAMP);
    pio_sm_set_pins_with_mask(R.pio, R.sm_pulser, 0, 1u << PIN_PDAMP);
    pio_sm_set_consecutive_pindirs(R.pio, R.sm_pulser, PIN_PDAMP, 1, true);
#else
    sm_config_set_set_pins(&c, 0, 0); /* no damping switch: `set pins` drives nothing */
#endif
    pio_sm_init(R.pio, R.sm_pulser, R.off_pulser, &c);
    pio_sm_set_enabled(R.pio, R.sm_pulser, true);
    gpio_init(PIN_PULSER_OE);
    gpio_set_dir(PIN_PULSER_OE, GPIO_OUT);
    gpio_put(PIN_PULSER_OE, 0);
#ifdef PIN_HV_EN
    gpio_init(PIN_HV_EN);
    gpio_set_dir(PIN_HV_EN, GPIO_OUT);
    gpio_put(PIN_HV_EN, 1);
#endif

    /* ADC data: D0..D9 on ten consecutive GPIOs from PIN_ADC_D0 */
    R.off_adc = pio_add_program(R.pio, &sb_adc_program);
    R.sm_adc = (uint)pio_claim_unused_sm(R.pio, true);
    c = sb_adc_program_get_default_config(R.off_adc);
    sm_config_set_in_pins(&c, PIN_ADC_D0);
    sm_config_set_in_shift(&c, true, true, 32);
    sm_config_set_fifo_join(&c, PIO_FIFO_JOIN_RX);
    for (pin = PIN_ADC_D0; pin < PIN_ADC_D0 + 10u; pin++)
        pio_gpio_init(R.pio, pin);
    pio_sm_set_consecutive_pindirs(R.pio, R.sm_adc, PIN_ADC_D0, 10, false);
    pio_sm_init(R.pio, R.sm_adc, R.off_adc, &c);
    R.dma_adc = dma_claim_unused_channel(true);

    /* TGC DAC on the board's SPI, 16-bit frames with hardware CS; a DMA timer paces the
       steps */
    spi_init(PORT_DAC_SPI, 20000000);
    spi_set_format(PORT_DAC_SPI, 16, SPI_CPOL_0, SPI_CPHA_0, SPI_MSB_FIRST);
    gpio_set_function(PIN_DAC_CS, GPIO_FUNC_SPI);
    gpio_set_function(PIN_DAC_SCK, GPIO_FUNC_SPI);
    gpio_set_function(PIN_DAC_SDI, GPIO_FUNC_SPI);
    R.dma_tgc = dma_claim_unused_channel(true);
    R.tgc_timer = dma_claim_unused_timer(true);
#ifdef PIN_VGA_HILO
    gpio_init(PIN_VGA_HILO);
    gpio_set_dir(PIN_VGA_HILO, GPIO_OUT);
    gpio_put(PIN_VGA_HILO, 0); /* LO gain mode: the range board_rp2040.c announces */
#endif

    /* housekeeping ADC: HV sense (where the board has one) and the temperature sensor */
    adc_init();
#ifdef PIN_HV_SENSE
    adc_gpio_init(PIN_HV_SENSE);
#endif
    adc_set_temp_sensor_enabled(true);

    memset(hal, 0, sizeof *hal);
    hal->ctx = &R;
    hal->now_us = now_us;
    hal->link_write = link_write;
    hal->link_space = link_space;
    hal->link_fill_permille = link_fill;
    hal->tgc_write = tgc_write;
    hal->sweep_move = NULL; /* FIXED: no mechanism, the line is where it always is */
    hal->adc_arm = adc_arm;
    hal->pulse_fire = pulse_fire;
    hal->adc_wait = adc_wait;
#ifdef PIN_HV_SENSE
    hal->hv_read_mv = hv_read_mv;
#endif
    hal->temperature_cdeg = temperature_cdeg;
    hal->faults = faults;
    hal->front_end_reset = front_end_reset;
}
