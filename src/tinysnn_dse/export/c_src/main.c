/* Classify the images of a spike-train file (README.md in the export folder documents
 * the format) with the exported network: one predicted label per line (-1: no class
 * scored), with --counts followed by the spike count of every excitatory neuron.
 *
 *   ./tinysnn test_spikes.bin [--counts] [--per-step]
 *
 * --per-step runs each presentation through tsnn_begin and tsnn_step instead of
 * tsnn_present (the same numbers).
 *
 *   ./tinysnn test_pixels.bin [--counts]
 *
 * A pixel file (TSNNPXK1, a design with the counter encoder) holds each image's pixel
 * codes and key instead: the spikes are drawn here, by tsnn_encode (tsnn_infer_pixels).
 * An image is presented again (the file's next presentation of it, drawn at a boosted
 * rate) while it draws fewer than TSNN_MIN_SPIKES spikes, at most TSNN_MAX_BOOSTS times,
 * as the simulator does; its counts are the last presentation's. Exit status: 0, 1 for a
 * file that cannot be read, 3 where an image needs a presentation the file lacks. */
#include <stdio.h>
#include <string.h>

#include "model.h"
#include "tsnn_io.h"
#include "tinysnn.h"

static uint16_t step_spikes[TSNN_STEPS];
static uint16_t inputs[(uint32_t)TSNN_STEPS * TSNN_N_IN];
static int32_t counts[TSNN_N];

/* One image's line: its class, then with --counts every neuron's count. */
static void print_image(int with_counts)
{
    int j;
    printf("%d", tsnn_classify(counts));
    if (with_counts)
        for (j = 0; j < TSNN_N; j++)
            printf(" %ld", (long)counts[j]);
    printf("\n");
}

#if TSNN_ENCODER_COUNTER
static uint8_t pixels[TSNN_N_IN];
static uint64_t round_keys[TSNN_MAX_BOOSTS + 1];

/* The images of a pixel file (after its magic): each run from its pixels and key. */
static int run_pixels(FILE *f, const char *path, int with_counts)
{
    uint64_t version, n_images, n_in, img, x;
    if (!read_u(f, 4, &version) || !read_u(f, 4, &n_images) || !read_u(f, 4, &n_in))
        return fail(path, "truncated header");
    if (version != 1 || n_in != TSNN_N_IN)
        return fail(path, "version or inputs differ from this network's");
    tsnn_init();
    for (img = 0; img < n_images; img++) {
        uint64_t label, key, n_pres, p;
        if (!read_u(f, 4, &label) || !read_u(f, 8, &key) || !read_u(f, 4, &n_pres))
            return fail(path, "truncated image header");
        if (n_pres < 1 || n_pres > (uint64_t)TSNN_MAX_BOOSTS + 1)
            return fail(path, "impossible number of presentations");
        for (p = 0; p <= (uint64_t)TSNN_MAX_BOOSTS; p++) {
            round_keys[p] = 0;
            if (p < n_pres && !read_u(f, 8, &round_keys[p]))
                return fail(path, "truncated rounding keys");
        }
        if (fread(pixels, 1, TSNN_N_IN, f) != TSNN_N_IN)
            return fail(path, "truncated pixels");
        x = (uint64_t)tsnn_infer_pixels(pixels, key, round_keys, counts);
        if (x != n_pres) {
            fprintf(stderr, "error: image %lu took %lu presentations; the simulator %lu\n",
                    (unsigned long)img, (unsigned long)x, (unsigned long)n_pres);
            return 3;
        }
        print_image(with_counts);
        (void)label;
    }
    fclose(f);
    return 0;
}
#endif

int main(int argc, char **argv)
{
    FILE *f;
    char magic[8];
    uint64_t version, n_images, n_in, n_steps, max_pres, x;
    uint64_t img;
    int with_counts = 0, per_step = 0, a;
    for (a = 2; a < argc; a++) {
        if (strcmp(argv[a], "--counts") == 0)
            with_counts = 1;
        else if (strcmp(argv[a], "--per-step") == 0)
            per_step = 1;
        else
            argc = 0; /* an unknown option: the usage line */
    }
    if (argc < 2) {
        fprintf(stderr, "usage: %s SPIKES.bin [--counts] [--per-step]\n", argv[0]);
        return 2;
    }
    f = fopen(argv[1], "rb");
    if (f == NULL)
        return fail(argv[1], "cannot open");
    if (fread(magic, 1, 8, f) != 8)
        return fail(argv[1], "not a tinysnn spike file (magic TSNNSPK1)");
#if TSNN_ENCODER_COUNTER
    if (memcmp(magic, "TSNNPXK1", 8) == 0)
        return run_pixels(f, argv[1], with_counts);
#endif
    if (memcmp(magic, "TSNNSPK1", 8) != 0)
        return fail(argv[1], "not a tinysnn spike file (magic TSNNSPK1)");
    if (!read_u(f, 4, &version) || !read_u(f, 4, &n_images) || !read_u(f, 4, &n_in) ||
        !read_u(f, 4, &n_steps) || !read_u(f, 4, &max_pres))
        return fail(argv[1], "truncated header");
    if (version != 1 || n_in != TSNN_N_IN || n_steps != TSNN_STEPS)
        return fail(argv[1], "version, inputs or steps differ from this network's");
    tsnn_init();
    for (img = 0; img < n_images; img++) {
        uint64_t label, n_pres, p;
        int needed = 1;
        if (!read_u(f, 4, &label) || !read_u(f, 4, &n_pres))
            return fail(argv[1], "truncated image header");
        if (n_pres > max_pres)
            return fail(argv[1], "more presentations than the header allows");
        for (p = 0; p < n_pres; p++) {
            tsnn_presentation pr;
            uint64_t key, n_spk, t;
            if (!read_u(f, 8, &key) || !read_u(f, 4, &n_spk))
                return fail(argv[1], "truncated presentation header");
            if (n_spk > (uint64_t)TSNN_STEPS * TSNN_N_IN)
                return fail(argv[1], "more input spikes than steps x inputs");
            for (t = 0, x = 0; t < TSNN_STEPS; t++) {
                uint64_t c;
                if (!read_u(f, 2, &c) || c > TSNN_N_IN)
                    return fail(argv[1], "truncated or impossible spike counts");
                step_spikes[t] = (uint16_t)c;
                x += c;
            }
            if (x != n_spk)
                return fail(argv[1], "spike counts of the steps do not add up");
            for (t = 0; t < n_spk; t++) {
                if (!read_u(f, 2, &x) || x >= TSNN_N_IN)
                    return fail(argv[1], "truncated or out-of-range input index");
                inputs[t] = (uint16_t)x;
            }
            if (!needed)
                continue; /* a presentation this run does not need */
            pr.step_spikes = step_spikes;
            pr.inputs = inputs;
            pr.key = key;
            if (per_step) {
                const uint16_t *in = inputs;
                int32_t total = 0, s;
                tsnn_begin(counts);
                for (s = 0; s < TSNN_STEPS; s++) {
                    total += tsnn_step(s, in, step_spikes[s], key, counts);
                    in += step_spikes[s];
                }
                x = (uint64_t)total;
            } else
                x = (uint64_t)tsnn_present(&pr, counts);
            if ((int64_t)x >= TSNN_MIN_SPIKES || TSNN_MIN_SPIKES <= 0 || p >= TSNN_MAX_BOOSTS)
                needed = 0;
        }
        if (needed) {
            fprintf(stderr, "error: image %lu needs presentation %lu; the file stores %lu\n",
                    (unsigned long)img, (unsigned long)(n_pres + 1), (unsigned long)n_pres);
            return 3;
        }
        print_image(with_counts);
        (void)label;
    }
    fclose(f);
    return 0;
}
