/*
 * Eight-float vectors with clang/gcc vector extensions, plus the vectorised activations.
 *
 * Kernels are written once over v8f in always-inline bodies; a thin wrapper compiled with
 * target("avx2,fma") turns them into AVX2 code and a plain wrapper into portable code (SSE2 pairs on
 * x86-64, NEON elsewhere). The AVX2 wrapper is chosen at run time on CPU features.
 */
#ifndef RECUR_SIMD_H
#define RECUR_SIMD_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

typedef float v8f __attribute__((vector_size(32)));
typedef int32_t v8i __attribute__((vector_size(32)));
/* Same vector with 4-byte alignment: loads and stores anywhere in a float buffer. */
typedef float v8f_unaligned __attribute__((vector_size(32), aligned(4)));
/* Sixteen floats: one AVX-512 register, a pair of AVX2 ones. The matrix-product tiles are written
   over it, so one source serves both widths. */
typedef float v16f __attribute__((vector_size(64)));
typedef float v16f_unaligned __attribute__((vector_size(64), aligned(4)));

#define RK_INLINE static inline __attribute__((always_inline))
/* Unrolls the next loop completely (its trip count is a constant after inlining). */
#if defined(__clang__)
#define RK_UNROLL _Pragma("clang loop unroll(full)")
#else
#define RK_UNROLL _Pragma("GCC unroll 32")
#endif
#if defined(__x86_64__) || defined(__i386__)
#define RK_HAVE_AVX2_VARIANT 1
#define RK_AVX2 __attribute__((target("avx2,fma,f16c")))
#define RK_AVX512 __attribute__((target("avx512f,avx512vl,avx2,fma,f16c")))
#else
#define RK_HAVE_AVX2_VARIANT 0
#endif

RK_INLINE v8f splat(float s) { return (v8f){s, s, s, s, s, s, s, s}; }
RK_INLINE v8f load8(const float *p) { return *(const v8f_unaligned *)p; }
RK_INLINE void store8(float *p, v8f v) { *(v8f_unaligned *)p = v; }

/* The first n (< 8) floats of p, the rest zero; and the store that writes only n lanes. */
RK_INLINE v8f load_partial(const float *p, size_t n) {
    float lanes[8] = {0};
    memcpy(lanes, p, n * sizeof(float));
    return load8(lanes);
}
RK_INLINE void store_partial(float *p, v8f v, size_t n) {
    float lanes[8];
    store8(lanes, v);
    memcpy(p, lanes, n * sizeof(float));
}
RK_INLINE v8f load_n(const float *p, size_t n) { return n >= 8 ? load8(p) : load_partial(p, n); }
RK_INLINE void store_n(float *p, v8f v, size_t n) {
    if (n >= 8) store8(p, v);
    else store_partial(p, v, n);
}

RK_INLINE v16f splat16(float s) { return (v16f){s, s, s, s, s, s, s, s, s, s, s, s, s, s, s, s}; }
RK_INLINE v16f load16(const float *p) { return *(const v16f_unaligned *)p; }
RK_INLINE void store16(float *p, v16f v) { *(v16f_unaligned *)p = v; }
RK_INLINE v16f join16(v8f low, v8f high) {
    return __builtin_shufflevector(low, high, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
}
/* The first n floats of p (zero past n), and the store of only n lanes. The partial cases are
   out of line, so a loop's accumulators stay in registers around them. */
__attribute__((noinline, cold)) static void copy_floats(float *to, const float *from, size_t n) {
    memcpy(to, from, n * sizeof(float));
}
RK_INLINE v16f load16_n(const float *p, size_t n) {
    if (n >= 16) return load16(p);
    float lanes[16] = {0};
    copy_floats(lanes, p, n);
    return load16(lanes);
}
RK_INLINE void store16_n(float *p, v16f v, size_t n) {
    if (n >= 16) {
        store16(p, v);
        return;
    }
    float lanes[16];
    store16(lanes, v);
    copy_floats(p, lanes, n);
}

RK_INLINE v8f select8(v8i mask, v8f yes, v8f no) { return (v8f)(((v8i)yes & mask) | ((v8i)no & ~mask)); }
typedef int32_t v16i __attribute__((vector_size(64)));
RK_INLINE v16f select16(v16i mask, v16f yes, v16f no) { return (v16f)(((v16i)yes & mask) | ((v16i)no & ~mask)); }

/* The activations, defined once over a vector type V (its mask type, splat and select) and made for
   8 floats (vtanh, vsigmoid, vrelu) and for 16 (vtanh16, vsigmoid16, vrelu16): the same operations lane
   for lane, so a value's activation has the same bits at either width.

   CLAMP: x limited to [lo, hi], NaN kept (a comparison with NaN is false, so NaN is never replaced): the
   gates of a NaN input are NaN, as in PyTorch, not a saturated ±1.

   TANH: tanh(x) ≈ x·P(x²)/Q(x²), degrees 13 and 6, fitted on |x| ≤ 10 for the least largest relative
   error by scripts/fit_activations.py (which prints these coefficients), as ONNX Runtime's and
   Eigen's tanh are. Beyond |x| = 9.02, where float tanh is ±1, the input is held at 9.02, where the
   quotient rounds to ±1; rounding can put the quotient an ulp or two past ±1 near saturation, so it
   is held in [-1, 1] too. Over every float (Tests/kernels/activations.c): within 3.3e-7 of tanh with
   FMA, 4.1e-7 without, always in [-1, 1]; the exp-based form (Cephes) was within 8e-8 but took
   half as long again in an LSTM's gate math (exponent arithmetic, and a second polynomial for
   small |x| where 1 − 2/(e²ˣ + 1) cancels).

   SIGMOID: σ(x) = (1 + tanh(x/2)) / 2: within 1.9e-7 of σ with FMA, 2.1e-7 without, always in [0, 1]. */
#define RK_ACTIVATIONS(V, SPLAT, SELECT, CLAMP, TANH, SIGMOID, RELU)                                       \
    RK_INLINE V CLAMP(V x, float lo, float hi) {                                                           \
        x = SELECT(x < SPLAT(lo), SPLAT(lo), x);                                                           \
        return SELECT(x > SPLAT(hi), SPLAT(hi), x);                                                        \
    }                                                                                                      \
    RK_INLINE V TANH(V x) {                                                                                \
        x = CLAMP(x, -9.02f, 9.02f);                                                                       \
        V s = x * x;                                                                                       \
        V p = SPLAT(-6.274125506e-14f);                                                                    \
        p = p * s + SPLAT(4.375653659e-11f);                                                               \
        p = p * s + SPLAT(-1.828440688e-08f);                                                              \
        p = p * s + SPLAT(1.066497589e-05f);                                                               \
        p = p * s + SPLAT(3.056682181e-03f);                                                               \
        p = p * s + SPLAT(1.304158121e-01f);                                                               \
        p = p * s + SPLAT(1.0f);                                                                           \
        V q = SPLAT(2.477571252e-04f);                                                                     \
        q = q * s + SPLAT(2.430656180e-02f);                                                               \
        q = q * s + SPLAT(4.637490213e-01f);                                                               \
        q = q * s + SPLAT(1.0f);                                                                           \
        return CLAMP(x * p / q, -1.0f, 1.0f);                                                              \
    }                                                                                                      \
    RK_INLINE V SIGMOID(V x) { return SPLAT(0.5f) * TANH(SPLAT(0.5f) * x) + SPLAT(0.5f); }                 \
    RK_INLINE V RELU(V x) { return SELECT(x < SPLAT(0.0f), SPLAT(0.0f), x); }

RK_ACTIVATIONS(v8f, splat, select8, clamp_keeping_nan, vtanh, vsigmoid, vrelu)
RK_ACTIVATIONS(v16f, splat16, select16, clamp16_keeping_nan, vtanh16, vsigmoid16, vrelu16)
#undef RK_ACTIVATIONS

#endif
