/* What the integer C of every model family shares (C99, integer arithmetic only): powers
 * of two, the floor division by one, the counter-based hash of stochastic rounding, and
 * the reader of parameter arrays packed at their bit width. Included by tinysnn.c (the
 * STDP family) and diet.c (the gradient-trained family); every function is static inline. */
#ifndef TSNN_COMMON_H
#define TSNN_COMMON_H

#include <stdint.h>

#define P2(k) ((int64_t)1 << (k)) /* 2**k, 0 <= k < 63 */

/* floor(a / 2**k) for any a of magnitude below 2**62 */
static inline int64_t floor_div2(int64_t a, int k)
{
    return a >= 0 ? a / P2(k) : -((-a + P2(k) - 1) / P2(k));
}

static inline uint64_t tsnn_hash64(uint64_t key, uint64_t a, uint64_t b)
{
    uint64_t z = key + (a * UINT64_C(2654435761) + b + 1u) * UINT64_C(0x9E3779B97F4A7C15);
    z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
    return z ^ (z >> 31);
}

/* ------------------------------------------------------------------ packed arrays */

/* Where the packed parameter arrays of model_data.h live, and how one of their bytes is
 * read. By default they are ordinary `static const` data, which the usual linker scripts
 * of ARM Cortex-M and RISC-V microcontrollers put in flash (.rodata), read through plain
 * pointers. A microcontroller whose flash is not in the data address space (AVR) defines
 * both, or the arrays are copied to RAM at start-up and plain pointers read that copy:
 *     #include <avr/pgmspace.h>
 *     -DTSNN_FLASH=PROGMEM '-DTSNN_FLASH_BYTE(p)=pgm_read_byte(p)'
 * The bit reader below is the only reader of these arrays. */
#ifndef TSNN_FLASH
#define TSNN_FLASH
#endif
#ifndef TSNN_FLASH_BYTE
#define TSNN_FLASH_BYTE(p) (*(p))
#endif

/* Reads consecutive fields of `width` bits (1-32) from a little-endian bit stream that
 * starts at bit `bit` of `a`; bytes are read only when needed. */
typedef struct {
    const uint8_t *p;
    uint64_t buf;
    unsigned have;
    unsigned skip;
} bitreader;

static inline void br_start(bitreader *r, const uint8_t *a, uint64_t bit)
{
    r->p = a + (bit >> 3);
    r->skip = (unsigned)(bit & 7u);
    r->buf = 0;
    r->have = 0;
}

static inline uint32_t br_read(bitreader *r, unsigned width)
{
    uint32_t x;
    while (r->have < width + r->skip) {
        r->buf |= (uint64_t)TSNN_FLASH_BYTE(r->p) << r->have;
        r->p++;
        r->have += 8u;
    }
    x = (uint32_t)((r->buf >> r->skip) & ((UINT64_C(1) << width) - 1u));
    r->buf >>= width + r->skip;
    r->have -= width + r->skip;
    r->skip = 0;
    return x;
}

static inline int64_t sign_extend(uint32_t x, unsigned width)
{
    return (x >> (width - 1u)) & 1u ? (int64_t)x - P2(width) : (int64_t)x;
}

#endif
