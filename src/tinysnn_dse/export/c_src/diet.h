/* tinysnn integer inference of the gradient-trained family (C99, integer arithmetic
 * only, no dynamic memory). The network, its formats and its constants are in model.h
 * and model_data.h, which `tinysnn export` writes; docs/model.md ("The gradient-trained
 * family", integer inference) defines every step. */
#ifndef TSNN_DIET_H
#define TSNN_DIET_H

#include <stdint.h>

/* Infer one image from rest: `pixels` its TSNN_N_IN pixel codes 0..255 (an event design,
 * TSNN_EVENTS: its TSNN_T frames of TSNN_N_IN spikes 0/1, step-major), `key` the key of
 * its counter-based uniforms (stochastic rounding, Poisson input; unused otherwise).
 * out[j] receives output neuron j's membrane code after the last step, spikes[l] (may be
 * NULL) the spikes of hidden layer l; returns the predicted class: the first output
 * with the largest membrane. */
int tsnn_diet_infer(const uint8_t *pixels, uint64_t key, int64_t *out, int32_t *spikes);

/* The 64 counter-based random bits of (key, a, b): SplitMix64's finaliser over
 * key + (a * 2654435761 + b + 1) * 0x9E3779B97F4A7C15, arithmetic mod 2**64. */
uint64_t tsnn_hash(uint64_t key, uint64_t a, uint64_t b);

#endif
