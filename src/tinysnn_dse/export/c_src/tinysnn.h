/* tinysnn integer inference: the API of tinysnn.c (C99, integer arithmetic only, no
 * dynamic memory). The network, its formats and its constants are in model.h, which
 * `tinysnn export` writes; docs/model.md ("Integer inference") defines every step. */
#ifndef TSNN_TINYSNN_H
#define TSNN_TINYSNN_H

#include <stdint.h>

/* One presentation of one image: the input spikes of each step as an event list, and
 * the key of its stochastic rounding (unused by truncation and nearest rounding). */
typedef struct {
    const uint16_t *step_spikes; /* [TSNN_STEPS]: how many inputs spike at each step */
    const uint16_t *inputs;      /* their indices, step after step (sum of step_spikes) */
    uint64_t key;                /* stochastic-rounding key of this presentation */
} tsnn_presentation;

/* Derive the Vmem-unit thresholds (and the bitmap's row offsets) once, before the first
 * presentation. */
void tsnn_init(void);

/* Run one presentation from rest; counts[j] receives the spikes of excitatory neuron j.
 * Returns their sum. The same as tsnn_begin, then tsnn_step for t = 0 .. TSNN_STEPS - 1
 * with each step's inputs. */
int32_t tsnn_present(const tsnn_presentation *p, int32_t *counts);

/* The per-step API, for inputs that arrive step by step (a sensor, an encoder on the
 * chip): tsnn_begin puts every neuron at rest and zeroes counts[]; tsnn_step runs step t
 * (0, 1, ... in order) with the n_in inputs that spike at it (their indices, ascending,
 * as the simulator orders them), the presentation's stochastic-rounding key, adding each
 * neuron's spike to counts[j]; it returns the excitatory spikes of the step. Only one
 * step's inputs need be held at a time. */
void tsnn_begin(int32_t *counts);
int32_t tsnn_step(int32_t t, const uint16_t *inputs, int n_in, uint64_t key, int32_t *counts);

/* The counter encoder (a design with encoder counter: TSNN_ENCODER_COUNTER 1), which
 * draws the simulator's input spikes bit for bit from an image's pixel codes (0..255)
 * and its 64-bit key. tsnn_encode writes the inputs that spike at step t of presentation
 * `boost` (0: the first; b: the b-th re-presentation at a boosted rate) into inputs[]
 * (ascending; room for TSNN_N_IN) and returns how many: input i spikes where the top 24
 * bits of tsnn_hash(tsnn_hash(image_key, 2^32 + boost, 0), t, i) are below the table
 * tsnn_enc_thr[boost][pixel] (model_data.h). tsnn_infer_pixels runs an image as the
 * simulator does: presentations 0, 1, ... while one draws fewer than TSNN_MIN_SPIKES
 * spikes, at most 1 + TSNN_MAX_BOOSTS; round_keys[b] is presentation b's stochastic-
 * rounding key (NULL where the rounding is not stochastic). counts[] holds the last
 * presentation's spikes (tsnn_classify reads it); returns the presentations run. */
int tsnn_encode(const uint8_t *pixels, uint64_t image_key, int boost, int32_t t,
                uint16_t *inputs);
int tsnn_infer_pixels(const uint8_t *pixels, uint64_t image_key, const uint64_t *round_keys,
                      int32_t *counts);

/* The class of the highest score for the spike counts of an image (its last
 * presentation), or -1 where no class scores above 0. */
int tsnn_classify(const int32_t *counts);

/* The 64 counter-based random bits of (key, a, b): SplitMix64's finaliser over
 * key + (a * 2654435761 + b + 1) * 0x9E3779B97F4A7C15, arithmetic mod 2**64. */
uint64_t tsnn_hash(uint64_t key, uint64_t a, uint64_t b);

int tsnn_n_inputs(void);
int tsnn_n_neurons(void);
int tsnn_n_steps(void);
int tsnn_min_spikes(void);
int tsnn_max_boosts(void);

#endif
