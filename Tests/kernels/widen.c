/*
 * rk_widen_half against the compiler's own binary16 conversion, over all 65536 bit patterns
 * (zeros, subnormals, normals, ±65504, the infinities and NaN), in whichever kernel variant
 * RECUR_KERNELS names: with F16C the conversion instruction, in the portable variant integer code.
 * Rows start at every offset of a vector (the pattern array is read from each of its first 8 halves),
 * since an embedding widens rows that start anywhere. Prints the patterns checked; exit status 1 on
 * a value that differs (NaN must stay NaN).
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "recur_kernels.h"

enum { PATTERNS = 1 << 16, OFFSETS = 8 };

static uint16_t patterns[PATTERNS + OFFSETS];
static float widened[PATTERNS];

int main(void) {
    for (uint32_t i = 0; i < PATTERNS + OFFSETS; i++) patterns[i] = (uint16_t)i;
    long wrong = 0, checked = 0;
    for (size_t offset = 0; offset < OFFSETS; offset++) {
        rk_widen_half(PATTERNS, patterns + offset, widened);
        for (size_t i = 0; i < PATTERNS; i++, checked++) {
            _Float16 half;
            memcpy(&half, &patterns[offset + i], sizeof half);
            float expected = (float)half, value = widened[i];
            uint32_t expected_bits, value_bits;
            memcpy(&expected_bits, &expected, sizeof expected);
            memcpy(&value_bits, &value, sizeof value);
            if (isnan(expected) ? !isnan(value) : value_bits != expected_bits) {
                if (wrong++ < 5)
                    fprintf(stderr, "widen: %s: half 0x%04x became %a (0x%08x), not %a\n", rk_kernels_name(),
                            patterns[offset + i], value, value_bits, expected);
            }
        }
    }
    if (wrong > 0) {
        fprintf(stderr, "widen: %ld of %ld halves widened wrong in %s\n", wrong, checked, rk_kernels_name());
        return 1;
    }
    printf("%ld\n", checked);
    return 0;
}
