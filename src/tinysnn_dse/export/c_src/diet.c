/* tinysnn integer inference of the gradient-trained family (C99): integer arithmetic
 * only, no dynamic memory, the constants of model.h and the packed arrays of
 * model_data.h.
 *
 * One step of hidden neuron j of layer l (docs/model.md; core/diet_integer.py), on the
 * formats' codes, with X the layer's input (pixel codes 0..255 under direct encoding,
 * else this step's spikes of the layer below: Poisson input spikes where the top 24 bits
 * of tsnn_hash(key, 4 t, i) < P * 65793), W its weight codes and LAM, TH its leak and
 * threshold codes:
 *
 *   A  = LAM * U * 2**SH_LEAK + (sum_i X_i W_ij) * 2**SH_IN - S * TH * 2**SH_TH
 *        (TSNN_LEAK, the leak statement of core/step.py, with rest 0 and the input as
 *        its base)
 *   U' = clamp(round_K(A), V_LO, V_HI)           the design's one rounding
 *   S' = [U' >= THR]                             reset by subtraction at the next step
 *
 * and the output layer without leak or spike: A = U * 2**SH_V + (sum_i S_i W_ij) *
 * 2**SH_IN. round_K: floor (truncation), floor((A + HALF) / 2**K) (nearest), or
 * TSNN_ROUND_UP with the top 24 bits of tsnn_hash(key, 4 t + 1 + l, j) (stochastic);
 * K = 0 leaves A as it is. Shifts of signed values are multiplications and floor
 * divisions by powers of two, which C99 defines for negative values too. */
#include "diet.h"

#include "model.h"
#include "tsnn_common.h" /* before model_data.h: its TSNN_FLASH */
#include "model_data.h"

uint64_t tsnn_hash(uint64_t key, uint64_t a, uint64_t b)
{
    return tsnn_hash64(key, a, b);
}

static tsnn_u_t u[TSNN_DEPTH + 1][TSNN_MAX_N]; /* membranes (codes) */
static uint8_t s[TSNN_DEPTH + 1][TSNN_MAX_N]; /* spikes of this step (hidden layers) */
static tsnn_cur_t cur[TSNN_MAX_N];             /* a layer's input of this step (W codes) */
#if TSNN_POISSON
static uint8_t xin[TSNN_N_IN]; /* Poisson input spikes of this step */
#elif TSNN_EVENTS
/* events: the input holds TSNN_T frames of TSNN_N_IN spikes (0/1), one a step */
#else
static tsnn_cur_t cur0[TSNN_MAX_N]; /* direct encoding: layer 0's input, the same every step */
#endif

/* cur[j] = sum_i x[i] * W[i][j] over layer l's rows, x pixels (direct) or spikes */
static void current(const tsnn_layer *L, const uint8_t *x, tsnn_cur_t *c)
{
    int32_t i, j;
    for (j = 0; j < L->n; j++)
        c[j] = 0;
    for (i = 0; i < L->n_in; i++) {
        bitreader r;
        if (x[i] == 0)
            continue;
        br_start(&r, L->w, (uint64_t)i * (uint64_t)L->n * L->w_bits);
        for (j = 0; j < L->n; j++)
            c[j] += (tsnn_cur_t)((int64_t)x[i] * sign_extend(br_read(&r, L->w_bits), L->w_bits));
    }
}

static int64_t round_k(const tsnn_layer *L, int64_t a, uint64_t key, int32_t t, int32_t l,
                       int32_t j)
{
    int64_t q;
    if (L->k == 0)
        q = a;
    else {
#if TSNN_ROUNDING == TSNN_ROUND_STOCHASTIC
        int64_t uni = (int64_t)(tsnn_hash64(key, (uint64_t)(4 * t + 1 + l), (uint64_t)j) >> 40);
        q = floor_div2(a, L->k);
        q = TSNN_ROUND_UP(a, q, uni, P2(L->k), L->p2a, L->p2b);
#else
        (void)key;
        (void)t;
        (void)l;
        (void)j;
        q = floor_div2(a + L->half, L->k); /* half: 0 for truncation */
#endif
    }
    return TSNN_CLAMP(q, L->v_lo, L->v_hi);
}

int tsnn_diet_infer(const uint8_t *pixels, uint64_t key, int64_t *out, int32_t *spikes)
{
    int32_t t, l, j, best = 0;
    for (l = 0; l <= TSNN_DEPTH; l++)
        for (j = 0; j < TSNN_MAX_N; j++) {
            u[l][j] = 0;
            s[l][j] = 0;
        }
    for (l = 0; l < TSNN_DEPTH; l++)
        if (spikes != 0)
            spikes[l] = 0;
#if !TSNN_POISSON && !TSNN_EVENTS
    current(&tsnn_layers[0], pixels, cur0);
#endif
    for (t = 0; t < TSNN_T; t++) {
        for (l = 0; l <= TSNN_DEPTH; l++) {
            const tsnn_layer *L = &tsnn_layers[l];
            const tsnn_cur_t *c = cur;
            if (l == 0) {
#if TSNN_POISSON
                int32_t i;
                for (i = 0; i < TSNN_N_IN; i++) {
                    int64_t uni = (int64_t)(tsnn_hash64(key, (uint64_t)(4 * t), (uint64_t)i) >> 40);
                    xin[i] = (uint8_t)(uni < (int64_t)pixels[i] * TSNN_POISSON_SCALE);
                }
                current(L, xin, cur);
#elif TSNN_EVENTS
                current(L, pixels + (int64_t)t * TSNN_N_IN, cur);
#else
                c = cur0;
#endif
            } else
                current(L, s[l - 1], cur);
            for (j = 0; j < L->n; j++) {
                int64_t a = (int64_t)c[j] * P2(L->sh_in);
                if (l < TSNN_DEPTH) /* the leak statement, rest 0, the input as its base */
                    a = TSNN_LEAK((int64_t)u[l][j], 0, L->lam * P2(L->sh_leak),
                                  a - (int64_t)s[l][j] * L->th * P2(L->sh_th));
                else
                    a += (int64_t)u[l][j] * P2(L->sh_v);
                u[l][j] = (tsnn_u_t)round_k(L, a, key, t, l, j);
            }
            if (l < TSNN_DEPTH)
                for (j = 0; j < L->n; j++) {
                    s[l][j] = (uint8_t)(u[l][j] >= L->thr);
                    if (spikes != 0)
                        spikes[l] += s[l][j];
                }
        }
    }
    for (j = 0; j < TSNN_N_OUT; j++) {
        out[j] = u[TSNN_DEPTH][j];
        if (out[j] > out[best])
            best = j;
    }
    return best;
}
