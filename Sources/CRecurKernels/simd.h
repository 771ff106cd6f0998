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

RK_INLINE v8f vmin(v8f a, v8f b) { return __builtin_elementwise_min(a, b); }
RK_INLINE v8f vmax(v8f a, v8f b) { return __builtin_elementwise_max(a, b); }
RK_INLINE v8f select8(v8i mask, v8f yes, v8f no) { return (v8f)(((v8i)yes & mask) | ((v8i)no & ~mask)); }

/* e^x, Cephes' expf: range reduction by ln 2, degree-6 polynomial; ≈ 1 ulp over [-87, 88]. */
RK_INLINE v8f vexp(v8f x) {
    const float shifter = 12582912.0f; /* 1.5·2²³: adding it rounds to an integer kept in the low bits */
    x = vmin(vmax(x, splat(-87.3f)), splat(88.3f));
    v8f t = x * splat(1.44269504088896341f) + splat(shifter);
    v8f n = t - splat(shifter);
    v8i exponent = ((v8i)t - (v8i)splat(shifter) + 127) << 23;
    v8f r = x - n * splat(0.693359375f) - n * splat(-2.12194440e-4f);
    v8f p = splat(1.9875691500e-4f);
    p = p * r + splat(1.3981999507e-3f);
    p = p * r + splat(8.3334519073e-3f);
    p = p * r + splat(4.1665795894e-2f);
    p = p * r + splat(1.6666665459e-1f);
    p = p * r + splat(5.0000001201e-1f);
    p = p * (r * r) + r + splat(1.0f);
    return p * (v8f)exponent;
}

RK_INLINE v8f vsigmoid(v8f x) { return splat(1.0f) / (splat(1.0f) + vexp(-x)); }

/* tanh: Cephes' odd polynomial below |x| = 0.625 (where 1 − 2/(e²ˣ+1) would cancel), else that form. */
RK_INLINE v8f vtanh(v8f x) {
    v8i sign = (v8i)x & (v8i)splat(-0.0f);
    v8f a = (v8f)((v8i)x & ~(v8i)splat(-0.0f));
    v8f z = x * x;
    v8f p = splat(-5.70498872745e-3f);
    p = p * z + splat(2.06390887954e-2f);
    p = p * z + splat(-5.37397155531e-2f);
    p = p * z + splat(1.33314422036e-1f);
    p = p * z + splat(-3.33332819422e-1f);
    v8f small = p * z * x + x;
    v8f large = (v8f)((v8i)(splat(1.0f) - splat(2.0f) / (vexp(a + a) + splat(1.0f))) | sign);
    return select8(a < splat(0.625f), small, large);
}

RK_INLINE v8f vrelu(v8f x) { return vmax(x, splat(0.0f)); }

#endif
