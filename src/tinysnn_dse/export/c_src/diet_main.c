/* Classify the images of a pixel file (README.md in the export folder documents the
 * format) with the exported network: one line per image, the predicted class, then with
 * --out the output membranes' codes after the last step.
 *
 *   ./tinysnn test_pixels.bin [--out]
 *
 * Exit status: 0, 1 for a file that cannot be read. */
#include <stdio.h>
#include <string.h>

#include "diet.h"
#include "model.h"
#include "tsnn_io.h"

static uint8_t pixels[TSNN_IN_BYTES]; /* an image, or an event sample's TSNN_T frames */
static int64_t out[TSNN_N_OUT];

int main(int argc, char **argv)
{
    FILE *f;
    char magic[8];
    uint64_t version, n_images, n_in, img;
    int with_out = argc > 2 && strcmp(argv[2], "--out") == 0;
    if (argc < 2 || (argc > 2 && !with_out)) {
        fprintf(stderr, "usage: %s PIXELS.bin [--out]\n", argv[0]);
        return 2;
    }
    f = fopen(argv[1], "rb");
    if (f == NULL)
        return fail(argv[1], "cannot open");
    if (fread(magic, 1, 8, f) != 8 || memcmp(magic, "TSNNPIX1", 8) != 0)
        return fail(argv[1], "not a tinysnn pixel file (magic TSNNPIX1)");
    if (!read_u(f, 4, &version) || !read_u(f, 4, &n_images) || !read_u(f, 4, &n_in))
        return fail(argv[1], "truncated header");
    if (version != 1 || n_in != TSNN_IN_BYTES)
        return fail(argv[1], "version or inputs differ from this network's");
    for (img = 0; img < n_images; img++) {
        uint64_t label, key;
        int j, cls;
        if (!read_u(f, 4, &label) || !read_u(f, 8, &key) ||
            fread(pixels, 1, TSNN_IN_BYTES, f) != TSNN_IN_BYTES)
            return fail(argv[1], "truncated image");
        cls = tsnn_diet_infer(pixels, key, out, 0);
        printf("%d", cls);
        if (with_out)
            for (j = 0; j < TSNN_N_OUT; j++)
                printf(" %lld", (long long)out[j]);
        printf("\n");
        (void)label;
    }
    fclose(f);
    return 0;
}
