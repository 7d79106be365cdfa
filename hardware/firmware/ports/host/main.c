/*
 * sonobridge-fw-host: the reference firmware on Linux, serving protocol v1 on a pseudo-terminal
 * with the synthetic front end of synth.c.
 *
 *   sonobridge-fw-host [--link PATH] [--rate BYTES_PER_S] [--buffer BYTES] [--seed N]
 *
 * The first line on stdout is the pty's device path (flushed at once), so a test or a script
 * can start it and read where to connect. It serves until SIGINT or SIGTERM.
 *
 * The device's send buffer is an sb_ring of --buffer bytes drained into the pty master
 * without blocking, at most --rate bytes per second (0: as fast as the reader takes them).
 * When it is full the core drops lines and counts them in STATUS.dropped_lines, as a board
 * with a slow USB link would.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/select.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "board_host.h"
#include "sb_device.h"
#include "sb_ring.h"
#include "synth.h"

typedef struct {
    struct timespec t0;
    sb_ring_t ring;
    synth_t synth;
} host_t;

static host_t H;
static sb_device_t dev;
static uint16_t samples[HOST_MAX_SAMPLES];
static volatile sig_atomic_t stop_requested;

static uint64_t host_now_us(void *ctx)
{
    struct timespec t;
    (void)ctx;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (uint64_t)(t.tv_sec - H.t0.tv_sec) * 1000000u + (uint64_t)(t.tv_nsec / 1000) -
           (uint64_t)(H.t0.tv_nsec / 1000);
}

static void link_write(void *ctx, const uint8_t *data, size_t len)
{
    (void)ctx;
    /* the core asked link_space first, so this fits */
    (void)sb_ring_write(&H.ring, data, (uint32_t)len);
}

static size_t link_space(void *ctx)
{
    (void)ctx;
    return sb_ring_space(&H.ring);
}

static uint16_t link_fill(void *ctx)
{
    (void)ctx;
    return (uint16_t)((uint64_t)sb_ring_used(&H.ring) * 1000u / H.ring.cap);
}

static void tgc_write(void *ctx, const uint16_t *codes, size_t n)
{
    (void)ctx;
    synth_set_tgc(&H.synth, codes, (uint32_t)n);
}

static int32_t sweep_move(void *ctx, int32_t nominal)
{
    (void)ctx;
    H.synth.beam = nominal; /* an ideal mechanism: it lands on the nominal position */
    return nominal;
}

static void adc_arm(void *ctx, uint16_t *codes, uint32_t n, uint32_t delay, uint8_t dec)
{
    (void)ctx;
    H.synth.codes = codes;
    H.synth.n = n;
    H.synth.delay = delay;
    H.synth.dec = dec ? dec : 1;
}

static void pulse_fire(void *ctx, uint32_t freq_hz, uint8_t cycles)
{
    (void)ctx;
    H.synth.freq_hz = freq_hz;
    H.synth.cycles = cycles;
}

static int adc_wait(void *ctx)
{
    (void)ctx;
    synth_capture(&H.synth);
    return 0;
}

static void hv_set(void *ctx, uint32_t mv)
{
    (void)ctx;
    H.synth.hv_mv = mv;
}

static int16_t temperature(void *ctx)
{
    (void)ctx;
    return HOST_TEMPERATURE_CDEG;
}

static void on_signal(int sig)
{
    (void)sig;
    stop_requested = 1;
}

static void usage(FILE *f)
{
    fprintf(f, "usage: sonobridge-fw-host [--link PATH] [--rate BYTES_PER_S] [--buffer BYTES] "
               "[--seed N]\n");
}

static int parse_u64(const char *s, unsigned long long *out)
{
    char *end;
    errno = 0;
    *out = strtoull(s, &end, 0);
    return errno == 0 && end != s && *end == '\0' && s[0] != '-';
}

/* Open the pty and set it up; returns the master fd, or -1. */
static int open_pty(int *slave_fd, char *name, size_t name_len)
{
    struct termios tio;
    const char *path;
    int master = posix_openpt(O_RDWR | O_NOCTTY);
    if (master < 0 || grantpt(master) != 0 || unlockpt(master) != 0)
        return -1;
    path = ptsname(master);
    if (!path || strlen(path) + 1 > name_len)
        return -1;
    strcpy(name, path);
    /* holding a slave fd open keeps the master alive while the host closes and reopens the
       port: without it the master would read EIO (hang-up) between two host sessions */
    *slave_fd = open(name, O_RDWR | O_NOCTTY);
    if (*slave_fd < 0 || tcgetattr(*slave_fd, &tio) != 0)
        return -1;
    cfmakeraw(&tio);
    if (tcsetattr(*slave_fd, TCSANOW, &tio) != 0)
        return -1;
    if (fcntl(master, F_SETFL, fcntl(master, F_GETFL) | O_NONBLOCK) != 0)
        return -1;
    return master;
}

int main(int argc, char **argv)
{
    const char *link_path = NULL;
    unsigned long long rate = 0, buffer = HOST_SEND_BUFFER_BYTES, seed = 1;
    static uint8_t *ring_store;
    static const sb_hal_t hal_template = {
        NULL, host_now_us, link_write, link_space, link_fill, tgc_write, sweep_move, adc_arm,
        pulse_fire, adc_wait, hv_set, NULL, temperature, NULL, NULL, 1 /* emulated_timing */};
    sb_hal_t hal = hal_template;
    char name[128];
    int master, slave = -1, i;
    double tokens = 0;
    uint64_t last_refill;
    sigset_t block, orig;
    struct sigaction sa;

    for (i = 1; i < argc; i++) {
        int more = i + 1 < argc;
        if (!strcmp(argv[i], "--link") && more) {
            link_path = argv[++i];
        } else if (!strcmp(argv[i], "--rate") && more) {
            if (!parse_u64(argv[++i], &rate))
                goto bad;
        } else if (!strcmp(argv[i], "--buffer") && more) {
            if (!parse_u64(argv[++i], &buffer) || buffer < 2u * SB_REPLY_HEADROOM ||
                buffer > 0x40000000u)
                goto bad;
        } else if (!strcmp(argv[i], "--seed") && more) {
            if (!parse_u64(argv[++i], &seed))
                goto bad;
        } else if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            usage(stdout);
            return 0;
        } else {
            goto bad;
        }
    }

    ring_store = malloc((size_t)buffer); /* the port may allocate once; the core never does */
    if (!ring_store) {
        perror("sonobridge-fw-host: send buffer");
        return 1;
    }
    clock_gettime(CLOCK_MONOTONIC, &H.t0);
    sb_ring_init(&H.ring, ring_store, (uint32_t)buffer);
    synth_init(&H.synth, &host_board, (uint32_t)seed);

    master = open_pty(&slave, name, sizeof name);
    if (master < 0) {
        perror("sonobridge-fw-host: pty");
        return 1;
    }
    if (link_path) {
        (void)unlink(link_path); /* a stale link from an earlier run */
        if (symlink(name, link_path) != 0) {
            perror("sonobridge-fw-host: --link");
            return 1;
        }
    }

    /* signals only interrupt pselect, so the flag is never missed between check and wait */
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigemptyset(&block);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGTERM);
    sigprocmask(SIG_BLOCK, &block, &orig);

    hal.ctx = &H;
    sb_device_init(&dev, &host_board, &hal, samples, HOST_MAX_SAMPLES);

    printf("%s\n", name);
    fflush(stdout);
    fprintf(stderr, "sonobridge-fw-host: serving protocol v1 on %s%s%s (rate %s, buffer %llu B)\n",
            name, link_path ? " and " : "", link_path ? link_path : "",
            rate ? "limited" : "unlimited", buffer);

    last_refill = host_now_us(NULL);
    while (!stop_requested) {
        uint8_t rx[4096];
        fd_set rfds, wfds;
        struct timespec ts;
        uint64_t now, due, wait_us = 100000;
        const uint8_t *chunk;
        uint32_t avail;
        ssize_t got;

        /* 1. drain the send buffer into the pty */
        now = host_now_us(NULL);
        if (rate) {
            tokens += (double)(now - last_refill) * (double)rate / 1e6;
            /* a burst allowance of 10 ms, at least one maximum command reply */
            if (tokens > (double)rate / 100.0 + 2048.0)
                tokens = (double)rate / 100.0 + 2048.0;
        }
        last_refill = now;
        while ((avail = sb_ring_peek(&H.ring, &chunk)) > 0) {
            ssize_t put;
            if (rate && tokens < 1.0)
                break;
            if (rate && avail > (uint32_t)tokens)
                avail = (uint32_t)tokens;
            put = write(master, chunk, avail);
            if (put <= 0)
                break; /* EAGAIN: the pty is full; wait until writable */
            sb_ring_consume(&H.ring, (uint32_t)put);
            if (rate)
                tokens -= (double)put;
        }

        /* 2. commands */
        got = read(master, rx, sizeof rx);
        if (got > 0)
            sb_device_rx(&dev, rx, (size_t)got);

        /* 3. acquisition */
        sb_device_poll(&dev);

        /* 4. sleep until something can happen */
        if (got > 0)
            continue;
        now = host_now_us(NULL);
        /* the next firing, or when a partial command's idle gap ends: poll must run then */
        due = sb_device_next_due_us(&dev);
        if (due != UINT64_MAX)
            wait_us = due > now ? due - now : 0;
        FD_ZERO(&rfds);
        FD_ZERO(&wfds);
        FD_SET(master, &rfds);
        if (sb_ring_used(&H.ring)) {
            if (!rate || tokens >= 1.0) {
                FD_SET(master, &wfds);
            } else {
                uint64_t refill = (uint64_t)((1.0 - tokens) * 1e6 / (double)rate) + 1;
                if (refill < wait_us)
                    wait_us = refill;
            }
        }
        if (wait_us > 100000)
            wait_us = 100000;
        ts.tv_sec = (time_t)(wait_us / 1000000u);
        ts.tv_nsec = (long)(wait_us % 1000000u) * 1000L;
        if (pselect(master + 1, &rfds, &wfds, NULL, &ts, &orig) < 0 && errno != EINTR) {
            perror("sonobridge-fw-host: pselect");
            break;
        }
    }

    if (link_path)
        (void)unlink(link_path);
    close(slave);
    close(master);
    free(ring_store);
    fprintf(stderr, "sonobridge-fw-host: stopped (%u lines sent, %u dropped)\n",
            (unsigned)dev.lines_sent, (unsigned)dev.dropped_lines);
    return 0;

bad:
    usage(stderr);
    return 2;
}
