/* tinysnn integer inference (C99): integer arithmetic only, no dynamic memory.
 *
 * One step of a population, in integers on the formats' codes (docs/model.md, "Integer
 * inference"; model.h holds the constants of this design):
 *
 *   A  = (V - REST) * DSH + REST * 2**K                       leak (DSH = D * 2**(K - 16))
 *      + [not refractory] * (I * 2**SH_W + IREC)              input and recurrent input
 *   V' = clamp(round_K(A), V_LO, V_HI)                        the design's one rounding
 *   V' = max(V', FLOOR)                                       excitatory membrane floor
 *   spike where V' >= THR (THR = ceil(T * 2**(FV - FT))), then
 *   V' = RESET + (V' - THR) * KEEP (KEEP 0: to RESET), refractory
 *
 * written as the macros TSNN_LEAK, TSNN_GATE, TSNN_FLOOR_AT, TSNN_RESET_TO, TSNN_ROUND_UP
 * and TSNN_CLAMP, which model.h defines by translation from the Python of core/step.py, the
 * statements the Numba kernels compile.
 *
 * I is the sum of the weight codes of the inputs spiking at this step, IREC the
 * recurrent input of the previous step's spikes (tinySNN: lateral inhibition; baseline:
 * the inhibitory layer), both in accumulator units (2**-(FV + K) mV). round_K: floor
 * (truncation), floor(A / 2**K + 1/2) (nearest), or floor + [remainder > uniform]
 * (stochastic; the uniform is the top 24 bits of tsnn_hash(key, t, layer * N + j)).
 * Shifts of signed values are written as multiplications and floor divisions by powers
 * of two, which C99 defines for negative values too. */
#include "tinysnn.h"

#include "model.h"
#include "tsnn_common.h" /* before model_data.h: its TSNN_FLASH */
#include "model_data.h"

uint64_t tsnn_hash(uint64_t key, uint64_t a, uint64_t b)
{
    return tsnn_hash64(key, a, b);
}

/* ------------------------------------------------------------------ state */

static tsnn_thr_t thr[TSNN_N]; /* thresholds in Vmem codes */
static tsnn_vmem_t v[TSNN_N]; /* potentials (codes) */
static int16_t refr[TSNN_N];  /* refractory steps left */
static tsnn_rec_t irec[TSNN_N]; /* recurrent input of the next step (accumulator units) */
static tsnn_cur_t cur[TSNN_N]; /* input current of this step (weight codes) */
static uint8_t s_exc[TSNN_N]; /* spikes of this step */
#if TSNN_INHIBITORY
static tsnn_thr_t ithr[TSNN_N];  /* the inhibitory layer's thresholds (Vmem codes) */
static tsnn_vmem_t vi[TSNN_N];  /* its potentials (codes) */
static int16_t irefr[TSNN_N];   /* its refractory steps left */
static tsnn_rec_t iinp[TSNN_N];  /* its input of the next step */
static uint8_t s_inh[TSNN_N];   /* its spikes of this step */
#endif
#if TSNN_W_STORAGE == TSNN_STORAGE_BITMAP
static uint32_t row_start[TSNN_N_IN + 1]; /* first retained weight of each input row */
#endif
#if TSNN_W_STORAGE == TSNN_STORAGE_CSR
static uint8_t active[TSNN_N_IN]; /* inputs spiking at this step */
#endif
#if TSNN_READOUT != TSNN_READOUT_SOFT_VOTE
static int32_t n_assigned[TSNN_N_CLASSES]; /* neurons assigned each class */
#endif

static int64_t vmem_units(int64_t t)
{
#if TSNN_FV_MINUS_FT >= 0
    return t * P2(TSNN_FV_MINUS_FT);
#else
    return -floor_div2(-t, -(TSNN_FV_MINUS_FT)); /* ceil(t / 2**(FT - FV)) */
#endif
}

void tsnn_init(void)
{
    bitreader r;
    int j;
    br_start(&r, tsnn_vth, 0);
    for (j = 0; j < TSNN_N; j++) {
        uint32_t x = br_read(&r, TSNN_T_BITS);
        thr[j] = (tsnn_thr_t)vmem_units(TSNN_T_SIGNED ? sign_extend(x, TSNN_T_BITS) : (int64_t)x);
    }
#if TSNN_INHIBITORY
    br_start(&r, tsnn_vth_inh, 0);
    for (j = 0; j < TSNN_N; j++) {
        uint32_t x = br_read(&r, TSNN_T_BITS);
        ithr[j] = (tsnn_thr_t)vmem_units(TSNN_T_SIGNED ? sign_extend(x, TSNN_T_BITS) : (int64_t)x);
    }
#endif
#if TSNN_W_STORAGE == TSNN_STORAGE_BITMAP
    {
        uint32_t n = 0;
        int i;
        br_start(&r, tsnn_w_map, 0);
        for (i = 0; i < TSNN_N_IN; i++) {
            row_start[i] = n;
            for (j = 0; j < TSNN_N; j++)
                n += br_read(&r, 1);
        }
        row_start[TSNN_N_IN] = n;
    }
#endif
#if TSNN_READOUT != TSNN_READOUT_SOFT_VOTE
    for (j = 0; j < TSNN_N_CLASSES; j++)
        n_assigned[j] = 0;
    for (j = 0; j < TSNN_N; j++)
        if (tsnn_label[j] >= 0)
            n_assigned[tsnn_label[j]] += 1;
    for (j = 0; j < TSNN_N_CLASSES; j++)
        if (n_assigned[j] == 0)
            n_assigned[j] = 1; /* its score is 0 */
#endif
}

/* ------------------------------------------------------------------ one step */

static int64_t round_k(int64_t a, uint64_t key, int32_t t, int32_t idx)
{
    int64_t q;
#if TSNN_ROUNDING == TSNN_ROUND_STOCHASTIC
    int64_t u = (int64_t)(tsnn_hash(key, (uint64_t)t, (uint64_t)idx) >> 40);
    q = floor_div2(a, TSNN_K);
    q = TSNN_ROUND_UP(a, q, u, TSNN_P2K, TSNN_P2A, TSNN_P2B);
#else
    (void)key;
    (void)t;
    (void)idx;
    q = floor_div2(a + TSNN_HALF, TSNN_K); /* TSNN_HALF: 0 for truncation */
#endif
    return TSNN_CLAMP(q, (int64_t)TSNN_V_LO, (int64_t)TSNN_V_HI);
}

/* The input current of step t into cur[] (weight codes). */
static void input_current(const uint16_t *in, int n_in)
{
    int e, j;
#if TSNN_W_STORAGE == TSNN_STORAGE_CSR
    bitreader rp, ri, rw;
    uint32_t lo, hi, m;
    for (e = 0; e < n_in; e++)
        active[in[e]] = 1;
    br_start(&rp, tsnn_csr_ptr, 0);
    br_start(&ri, tsnn_csr_idx, 0);
    br_start(&rw, tsnn_w, 0);
    lo = br_read(&rp, TSNN_PTR_BITS);
    for (j = 0; j < TSNN_N; j++) {
        hi = br_read(&rp, TSNN_PTR_BITS);
        for (m = lo; m < hi; m++) {
            uint32_t i = br_read(&ri, TSNN_IDX_BITS);
            uint32_t w = br_read(&rw, TSNN_W_BITS);
            if (active[i])
                cur[j] += (tsnn_cur_t)w;
        }
        lo = hi;
    }
    for (e = 0; e < n_in; e++)
        active[in[e]] = 0;
#else
    for (e = 0; e < n_in; e++) {
        bitreader rw;
        uint32_t i = in[e];
#if TSNN_W_STORAGE == TSNN_STORAGE_BITMAP
        bitreader rm;
        br_start(&rm, tsnn_w_map, (uint64_t)i * TSNN_N);
        br_start(&rw, tsnn_w, (uint64_t)row_start[i] * TSNN_W_BITS);
        for (j = 0; j < TSNN_N; j++)
            if (br_read(&rm, 1))
                cur[j] += (tsnn_cur_t)br_read(&rw, TSNN_W_BITS);
#else
        br_start(&rw, tsnn_w, (uint64_t)i * TSNN_N * TSNN_W_BITS);
        for (j = 0; j < TSNN_N; j++)
            cur[j] += (tsnn_cur_t)br_read(&rw, TSNN_W_BITS);
#endif
    }
#endif
}

void tsnn_begin(int32_t *counts)
{
    int j;
    for (j = 0; j < TSNN_N; j++) {
        v[j] = (tsnn_vmem_t)TSNN_REST;
        refr[j] = 0;
        irec[j] = 0;
        cur[j] = 0;
        counts[j] = 0;
#if TSNN_INHIBITORY
        vi[j] = (tsnn_vmem_t)TSNN_IREST;
        irefr[j] = 0;
        iinp[j] = 0;
#endif
    }
}

int32_t tsnn_step(int32_t t, const uint16_t *in, int n_in, uint64_t key, int32_t *counts)
{
    int32_t n_fire = 0;
    int j;
    input_current(in, n_in);
    for (j = 0; j < TSNN_N; j++) { /* excitatory layer */
        int64_t a = TSNN_LEAK((int64_t)v[j], TSNN_REST, TSNN_DSH, TSNN_REST_K);
        int64_t x;
        a = TSNN_GATE(a, (int64_t)cur[j] * TSNN_SCALE_W + (int64_t)irec[j], refr[j]);
        x = round_k(a, key, t, j);
        x = TSNN_FLOOR_AT(x, TSNN_FLOOR); /* a macro: its arguments are evaluated twice */
        cur[j] = 0;
        s_exc[j] = x >= thr[j];
        if (s_exc[j]) {
            v[j] = (tsnn_vmem_t)TSNN_RESET_TO(x, (int64_t)thr[j], TSNN_RESET, TSNN_KEEP);
            refr[j] = TSNN_REF;
            counts[j] += 1;
            n_fire += 1;
        } else {
            v[j] = (tsnn_vmem_t)x;
            if (refr[j] > 0)
                refr[j] -= 1;
        }
    }
#if TSNN_INHIBITORY
    {
        int32_t n_inh = 0;
        for (j = 0; j < TSNN_N; j++) { /* inhibitory layer: the previous step's spikes */
            int64_t a = TSNN_LEAK((int64_t)vi[j], TSNN_IREST, TSNN_IDSH, TSNN_IREST_K);
            int64_t x;
            a = TSNN_GATE(a, (int64_t)iinp[j], irefr[j]);
            x = round_k(a, key, t, TSNN_N + j);
            s_inh[j] = x >= ithr[j];
            if (s_inh[j]) {
                vi[j] = (tsnn_vmem_t)TSNN_IRESET;
                irefr[j] = TSNN_IREF;
                n_inh += 1;
            } else {
                vi[j] = (tsnn_vmem_t)x;
                if (irefr[j] > 0)
                    irefr[j] -= 1;
            }
        }
        for (j = 0; j < TSNN_N; j++) {
            irec[j] = (tsnn_rec_t)(-(int64_t)(n_inh - s_inh[j]) * TSNN_WREC * P2(TSNN_K));
            iinp[j] = (tsnn_rec_t)((int64_t)s_exc[j] * TSNN_WEI * P2(TSNN_K));
        }
    }
#else
    for (j = 0; j < TSNN_N; j++) /* lateral inhibition of the others, next step */
        irec[j] = (tsnn_rec_t)(-(int64_t)(n_fire - s_exc[j]) * TSNN_WREC * P2(TSNN_K));
#endif
    return n_fire;
}

int32_t tsnn_present(const tsnn_presentation *p, int32_t *counts)
{
    int32_t t, total = 0;
    const uint16_t *in = p->inputs;
    tsnn_begin(counts);
    for (t = 0; t < TSNN_STEPS; t++) {
        total += tsnn_step(t, in, p->step_spikes[t], p->key, counts);
        in += p->step_spikes[t];
    }
    return total;
}

/* ------------------------------------------------------------------ the encoder */

#if TSNN_ENCODER_COUNTER
int tsnn_encode(const uint8_t *pixels, uint64_t image_key, int boost, int32_t t,
                uint16_t *inputs)
{
    uint64_t s = tsnn_hash64(image_key, TSNN_ENC_STREAM + (uint64_t)boost, 0);
    uint64_t row = (uint64_t)boost * 256u * TSNN_ENC_THR_BITS;
    int32_t i;
    int n = 0;
    for (i = 0; i < TSNN_N_IN; i++) {
        bitreader r;
        int64_t u;
        if (pixels[i] == 0)
            continue;
        br_start(&r, tsnn_enc_thr, row + (uint64_t)pixels[i] * TSNN_ENC_THR_BITS);
        u = (int64_t)(tsnn_hash64(s, (uint64_t)t, (uint64_t)i) >> 40);
        if (u < (int64_t)br_read(&r, TSNN_ENC_THR_BITS))
            inputs[n++] = (uint16_t)i;
    }
    return n;
}

int tsnn_infer_pixels(const uint8_t *pixels, uint64_t image_key, const uint64_t *round_keys,
                      int32_t *counts)
{
    static uint16_t in[TSNN_N_IN]; /* one step's input spikes */
    int b, n;
    int32_t t, total;
    for (b = 0;; b++) {
        uint64_t key = round_keys != 0 ? round_keys[b] : 0;
        total = 0;
        tsnn_begin(counts);
        for (t = 0; t < TSNN_STEPS; t++) {
            n = tsnn_encode(pixels, image_key, b, t, in);
            total += tsnn_step(t, in, n, key, counts);
        }
        if (total >= TSNN_MIN_SPIKES || TSNN_MIN_SPIKES <= 0 || b >= TSNN_MAX_BOOSTS)
            return b + 1;
    }
}
#endif

/* ------------------------------------------------------------------ readout */

int tsnn_classify(const int32_t *counts)
{
    int64_t best_n = 0, best_d = 1;
    int k, j, best = 0;
    for (k = 0; k < TSNN_N_CLASSES; k++) {
        int64_t num = 0, d = 1;
        for (j = 0; j < TSNN_N; j++) {
#if TSNN_READOUT == TSNN_READOUT_ALL /* all activity: mean count of the neurons assigned k */
            num += tsnn_label[j] == k ? (int64_t)counts[j] : 0;
#elif TSNN_READOUT == TSNN_READOUT_PROPORTION /* proportion weighting, over the neurons assigned k */
            num += tsnn_label[j] == k ? (int64_t)tsnn_prop[j * TSNN_N_CLASSES + k] * counts[j] : 0;
#else /* soft vote: every neuron, its proportion for k */
            num += (int64_t)tsnn_prop[j * TSNN_N_CLASSES + k] * counts[j];
#endif
        }
#if TSNN_READOUT != TSNN_READOUT_SOFT_VOTE
        d = n_assigned[k];
#endif
        if (k == 0 || num * best_d > best_n * d) { /* ties: the lower class */
            best_n = num;
            best_d = d;
            best = k;
        }
    }
    return best_n > 0 ? best : -1;
}

int tsnn_n_inputs(void) { return TSNN_N_IN; }
int tsnn_n_neurons(void) { return TSNN_N; }
int tsnn_n_steps(void) { return TSNN_STEPS; }
int tsnn_min_spikes(void) { return TSNN_MIN_SPIKES; }
int tsnn_max_boosts(void) { return TSNN_MAX_BOOSTS; }
