/* The test programs' file reading (main.c of the STDP family, diet_main.c of the
 * gradient-trained family): little-endian unsigned fields and one-line errors. Not part of
 * the network's code (tsnn_common.h, tinysnn.c, diet.c), which does no I/O. */
#ifndef TSNN_IO_H
#define TSNN_IO_H

#include <stdint.h>
#include <stdio.h>

/* Read a little-endian unsigned integer of `bytes` bytes (1-8) into *out; 0 at the end
 * of the file. */
static int read_u(FILE *f, unsigned bytes, uint64_t *out)
{
    unsigned char b[8];
    unsigned i;
    *out = 0;
    if (fread(b, 1, bytes, f) != bytes)
        return 0;
    for (i = 0; i < bytes; i++)
        *out |= (uint64_t)b[i] << (8u * i);
    return 1;
}

/* "error: PATH: WHAT" on stderr; the exit status of an unreadable file. */
static int fail(const char *path, const char *what)
{
    fprintf(stderr, "error: %s: %s\n", path, what);
    return 1;
}

#endif
