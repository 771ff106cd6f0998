/*
 * The step's vectorised activations (simd.h: vtanh, vsigmoid, vrelu) against libm in double:
 * largest absolute error over floats of |x| ≤ 40, range, symmetry, and the special values; and the
 * 16-float forms (vtanh16, vsigmoid16, vrelu16) giving the same bits as the 8-float ones.
 * Built by run.sh twice, as the portable and the AVX2 variants compile them (without and with FMA).
 *
 *     activations [STRIDE]   every STRIDE-th float (default 1: all 2.3·10⁹ of them, about a minute)
 */
#include "../../Sources/CRecurKernels/simd.h"
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

/* Bounds stated in simd.h's comments, which these checks hold it to. */
static const double TANH_MAX_ERROR = 4.1e-7, SIGMOID_MAX_ERROR = 2.1e-7;

static int failures = 0;
#define CHECK(condition, ...)                                                                                   \
    do {                                                                                                        \
        if (!(condition)) {                                                                                     \
            failures++;                                                                                         \
            fprintf(stderr, "activations: " __VA_ARGS__);                                                       \
            fputc('\n', stderr);                                                                                \
        }                                                                                                       \
    } while (0)

enum { BLOCK = 1 << 14 };
typedef enum { TANH, SIGMOID, RELU } activation;

/* f over x's n values into y, 8 floats at a time (apply) or 16 (apply16; n a multiple of 16). */
__attribute__((noinline)) static void apply(activation which, const float *x, float *y, size_t n) {
    for (size_t j = 0; j < n; j += 8) {
        v8f v = load8(x + j);
        store8(y + j, which == TANH ? vtanh(v) : which == SIGMOID ? vsigmoid(v) : vrelu(v));
    }
}
__attribute__((noinline)) static void apply16(activation which, const float *x, float *y, size_t n) {
    for (size_t j = 0; j < n; j += 16) {
        v16f v = load16(x + j);
        store16(y + j, which == TANH ? vtanh16(v) : which == SIGMOID ? vsigmoid16(v) : vrelu16(v));
    }
}

/* How many of x's n values have an activation at 16 floats with other bits than y's, at 8. */
static size_t wide_differs(activation which, const float *x, const float *y, size_t n) {
    static float wide[BLOCK];
    apply16(which, x, wide, n);
    size_t differing = 0;
    for (size_t i = 0; i < n; i++) differing += memcmp(&wide[i], &y[i], sizeof(float)) != 0;
    return differing;
}

/* f(x) at 8 floats, counting a different result at 16 as a failure. */
static float apply1(activation which, float x) {
    float in[16], out[16];
    for (int i = 0; i < 16; i++) in[i] = x;
    apply(which, in, out, 16);
    CHECK(wide_differs(which, in, out, 16) == 0, "f(%g) at 16 floats differs from f at 8", x);
    return out[0];
}

static float from_bits(uint32_t bits) {
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

/* Every stride-th float of magnitude below 40 and of both signs (beyond, both functions are
   saturated in float): the largest |f(x) − reference(x)|, outputs inside [low, high], and for
   tanh f(−x) = −f(x) exactly. */
static void sweep(activation which, const char *name, double bound, float low, float high, uint32_t stride) {
    static float x[BLOCK], negated[BLOCK], y[BLOCK], y_negated[BLOCK];
    uint32_t end;
    float limit = 40.0f;
    memcpy(&end, &limit, sizeof end);
    double worst = 0, worst_at = 0;
    size_t out_of_range = 0, asymmetric = 0, differing = 0, count = 0;
    for (uint64_t start = 0; start < end; start += (uint64_t)BLOCK * stride) {
        size_t n = 0;
        for (uint64_t bits = start; n < BLOCK && bits < end; bits += stride, n++) {
            x[n] = from_bits((uint32_t)bits);
            negated[n] = -x[n];
        }
        size_t padded = (n + 15) / 16 * 16;
        for (size_t pad = n; pad < padded; pad++) x[pad] = negated[pad] = 0;
        apply(which, x, y, padded);
        apply(which, negated, y_negated, padded);
        differing += wide_differs(which, x, y, padded) + wide_differs(which, negated, y_negated, padded);
        for (size_t i = 0; i < n; i++, count += 2) {
            double values[2] = {x[i], negated[i]}, outputs[2] = {y[i], y_negated[i]};
            for (int s = 0; s < 2; s++) {
                double v = values[s];
                double reference = which == TANH ? tanh(v) : 1.0 / (1.0 + exp(-v));
                double error = fabs(outputs[s] - reference);
                if (error > worst) worst = error, worst_at = v;
                if (!(outputs[s] >= low && outputs[s] <= high)) out_of_range++;
            }
            if (which == TANH && y_negated[i] != -y[i]) asymmetric++;
        }
    }
    printf("%s: %zu floats, largest error %.3g at x = %.9g\n", name, count, worst, worst_at);
    CHECK(worst <= bound, "%s: error %.3g at x = %.9g exceeds %.3g", name, worst, worst_at, bound);
    CHECK(out_of_range == 0, "%s: %zu outputs outside [%g, %g]", name, out_of_range, low, high);
    CHECK(asymmetric == 0, "%s: %zu values with f(-x) != -f(x)", name, asymmetric);
    CHECK(differing == 0, "%s: %zu values whose 16-float form has other bits than the 8-float one", name, differing);
}

int main(int argc, char **argv) {
    uint32_t stride = argc > 1 ? (uint32_t)strtoul(argv[1], NULL, 10) : 1;
    if (stride == 0) stride = 1;
    sweep(TANH, "tanh", TANH_MAX_ERROR, -1.0f, 1.0f, stride);
    sweep(SIGMOID, "sigmoid", SIGMOID_MAX_ERROR, 0.0f, 1.0f, stride);

    /* PyTorch's values at the special inputs: NaN stays NaN (a NaN in a sequence must not turn into
       saturated gates), infinities saturate, zero is exact. */
    CHECK(isnan(apply1(TANH, NAN)) && isnan(apply1(SIGMOID, NAN)) && isnan(apply1(RELU, NAN)),
          "NaN in, not NaN out");
    CHECK(apply1(TANH, INFINITY) == 1.0f && apply1(TANH, -INFINITY) == -1.0f, "tanh(±inf) is not ±1");
    CHECK(apply1(SIGMOID, INFINITY) == 1.0f && apply1(SIGMOID, -INFINITY) == 0.0f, "sigmoid(±inf) is not 1, 0");
    CHECK(apply1(TANH, 0.0f) == 0.0f && apply1(SIGMOID, 0.0f) == 0.5f, "tanh(0) or sigmoid(0) inexact");
    CHECK(apply1(RELU, -3.0f) == 0.0f && apply1(RELU, 2.5f) == 2.5f && apply1(RELU, INFINITY) == INFINITY,
          "relu wrong");
    if (failures) return 1;
    return 0;
}
