/*
 * rk_copy_bytes against the bytes it was given: every size class (none, under one 64-byte block,
 * whole blocks, blocks and a tail, large) at distances between the regions (modulo 4 KiB) on both
 * sides of each path's bounds (0 and 32 or more by memcpy, 1–31 by vectors), with guard bytes either
 * side of the destination that must stay as they were. Built under AddressSanitizer by run.sh, which
 * also catches a read or write past either region. Prints the number of cases; exits 1 on the first
 * wrong byte.
 */
#include "recur_kernels.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum { GUARD = 64, PAGE = 4096 };

static int copies(size_t bytes, size_t distance) {
    unsigned char *source = malloc(bytes + 1), *area = malloc(bytes + distance + 2 * GUARD + 2 * PAGE);
    if (!source || !area) {
        fprintf(stderr, "copy: out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < bytes; i++) source[i] = (unsigned char)(i * 131 + 7);
    /* The destination `distance` bytes past a multiple of 4 KiB from the source. */
    size_t shift = ((uintptr_t)source + distance - (uintptr_t)(area + GUARD)) % PAGE;
    unsigned char *to = area + GUARD + shift;
    memset(area, 0xA5, bytes + distance + 2 * GUARD + 2 * PAGE);
    rk_copy_bytes(to, source, bytes);
    int good = memcmp(to, source, bytes) == 0;
    for (size_t i = 1; i <= GUARD; i++) good = good && to[-(ptrdiff_t)i] == 0xA5 && to[bytes + i - 1] == 0xA5;
    if (!good) fprintf(stderr, "copy: %zu bytes at distance %zu (mod 4096) wrong\n", bytes, distance);
    free(source), free(area);
    return good;
}

int main(void) {
    const size_t sizes[] = {0, 1, 15, 16, 63, 64, 65, 127, 128, 1000, 4096, 70001, 204800};
    const size_t distances[] = {0, 1, 4, 15, 16, 17, 31, 32, 33, 48, 63, 64, 2048, 4064, 4080, 4095};
    size_t cases = 0;
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        for (size_t j = 0; j < sizeof distances / sizeof distances[0]; j++, cases++)
            if (!copies(sizes[i], distances[j])) return 1;
    printf("%zu\n", cases);
    return 0;
}
