// Training kernels of recur_train_kernels.h. Loops are written so the inner one is a unit-stride
// axpy the compiler vectorises without -ffast-math (no float reductions reordered).
#include "recur_train_kernels.h"
#include <math.h>
#include <string.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

/* exp for the cell non-linearities, branch-free so the cell loops vectorise (libm's expf is a call
   per element): Cody–Waite reduction x = n·ln2 + r, a degree-6 polynomial for e^r, 2^n by exponent
   bits. Relative error about 2e-7 over the clamped range [−87, 88]. */
static inline float rt_expf(float x) {
    x = x < -87.0f ? -87.0f : (x > 88.0f ? 88.0f : x);
    float n = (x * 1.44269504f + 12582912.0f) - 12582912.0f;  /* round to nearest: 1.5·2²³ */
    float r = (x - n * 0.693359375f) + n * 2.12194440e-4f;
    float p = 1.0f + r * (1.0f + r * (0.5f + r * (0.166666672f + r * (4.16664891e-2f + r * (8.33345857e-3f + r * 1.39060430e-3f)))));
    int32_t bits = ((int32_t)n + 127) << 23;
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return p * scale;
}

static inline float sigmoidf(float x) { return 1.0f / (1.0f + rt_expf(-x)); }
/* Saturates correctly: e^2x large gives 1, e^2x → 0 gives −1. */
static inline float fast_tanhf(float x) { return 1.0f - 2.0f / (rt_expf(2.0f * x) + 1.0f); }

/* Unaligned, aliasing-safe views of 8 and 16 floats. */
typedef float rt_v8 __attribute__((vector_size(32), aligned(4), may_alias));
typedef float rt_v16 __attribute__((vector_size(64), aligned(4), may_alias));
#define RT_K_CHUNK 256

/* The product in register tiles: 4 rows × 2 vectors of C stay in registers while k runs over a chunk,
   so each step of k costs two loads of B, four broadcasts of A and eight vector FMAs. K runs in chunks
   so the rows of B a chunk reads stay in cache across all of C. RT_GEMM_FAMILY(name, vector type,
   vector width, attributes, 8-row tiles
   for few-row products) defines rt_gemm_<name>; it is instantiated for AVX-512, AVX2+FMA and the baseline ISA
   and chosen at run time. */
#define RT_GEMM_FAMILY(NAME, VT, W, ATTR, ROWS8)                                                                       \
static inline __attribute__((always_inline)) ATTR void rt_tile4_##NAME(size_t m, size_t n, size_t k0, size_t k1,  \
        const float *A, size_t a_row, size_t a_col, const float *B, size_t ldb, float *C, size_t ldc) {          \
    const float *a0 = A + m * a_row, *a1 = a0 + a_row, *a2 = a1 + a_row, *a3 = a2 + a_row;                      \
    float *c0 = C + m * ldc + n, *c1 = c0 + ldc, *c2 = c1 + ldc, *c3 = c2 + ldc;                                \
    VT x0 = *(const VT *)c0, y0 = *(const VT *)(c0 + W), x1 = *(const VT *)c1, y1 = *(const VT *)(c1 + W);      \
    VT x2 = *(const VT *)c2, y2 = *(const VT *)(c2 + W), x3 = *(const VT *)c3, y3 = *(const VT *)(c3 + W);      \
    for (size_t k = k0; k < k1; k++) {                                                                           \
        const float *b = B + k * ldb + n;                                                                        \
        VT b0 = *(const VT *)b, b1 = *(const VT *)(b + W);                                                       \
        float s0 = a0[k * a_col], s1 = a1[k * a_col], s2 = a2[k * a_col], s3 = a3[k * a_col];                    \
        x0 += s0 * b0; y0 += s0 * b1;                                                                            \
        x1 += s1 * b0; y1 += s1 * b1;                                                                            \
        x2 += s2 * b0; y2 += s2 * b1;                                                                            \
        x3 += s3 * b0; y3 += s3 * b1;                                                                            \
    }                                                                                                            \
    *(VT *)c0 = x0; *(VT *)(c0 + W) = y0; *(VT *)c1 = x1; *(VT *)(c1 + W) = y1;                                  \
    *(VT *)c2 = x2; *(VT *)(c2 + W) = y2; *(VT *)c3 = x3; *(VT *)(c3 + W) = y3;                                  \
}                                                                                                                \
static inline __attribute__((always_inline)) ATTR void rt_tile8_##NAME(size_t m, size_t n, size_t k0, size_t k1,  \
        const float *A, size_t a_row, size_t a_col, const float *B, size_t ldb, float *C, size_t ldc) {          \
    const float *a = A + m * a_row;                                                                              \
    float *c = C + m * ldc + n;                                                                                  \
    VT x[8], y[8];                                                                                               \
    for (int r = 0; r < 8; r++) { x[r] = *(const VT *)(c + r * ldc); y[r] = *(const VT *)(c + r * ldc + W); }   \
    for (size_t k = k0; k < k1; k++) {                                                                           \
        const float *b = B + k * ldb + n;                                                                        \
        VT b0 = *(const VT *)b, b1 = *(const VT *)(b + W);                                                       \
        for (int r = 0; r < 8; r++) {                                                                            \
            float s = a[r * a_row + k * a_col];                                                                  \
            x[r] += s * b0; y[r] += s * b1;                                                                      \
        }                                                                                                        \
    }                                                                                                            \
    for (int r = 0; r < 8; r++) { *(VT *)(c + r * ldc) = x[r]; *(VT *)(c + r * ldc + W) = y[r]; }               \
}                                                                                                                \
static inline __attribute__((always_inline)) ATTR void rt_tile1_##NAME(size_t m, size_t n, size_t k0, size_t k1,  \
        const float *A, size_t a_row, size_t a_col, const float *B, size_t ldb, float *C, size_t ldc) {          \
    const float *a0 = A + m * a_row;                                                                             \
    float *c0 = C + m * ldc + n;                                                                                 \
    VT x0 = *(const VT *)c0, y0 = *(const VT *)(c0 + W);                                                         \
    for (size_t k = k0; k < k1; k++) {                                                                           \
        const float *b = B + k * ldb + n;                                                                        \
        float s0 = a0[k * a_col];                                                                                \
        x0 += s0 * *(const VT *)b; y0 += s0 * *(const VT *)(b + W);                                              \
    }                                                                                                            \
    *(VT *)c0 = x0; *(VT *)(c0 + W) = y0;                                                                        \
}                                                                                                                \
ATTR static void rt_gemm_##NAME(size_t M, size_t N, size_t K, const float *A, size_t a_row, size_t a_col,         \
                                const float *B, size_t ldb, float *C, size_t ldc) {                              \
    size_t M4 = M & ~(size_t)3, NT = N - N % (2 * W);                                                            \
    for (size_t k0 = 0; k0 < K; k0 += RT_K_CHUNK) {                                                              \
        size_t k1 = k0 + RT_K_CHUNK < K ? k0 + RT_K_CHUNK : K;                                                   \
        if (M <= 32) {                                                                                           \
            /* Few rows (a recurrent step): each panel of B is read once, reused from L1 by every row block. */  \
            size_t M8 = ROWS8 ? M & ~(size_t)7 : 0;                                                              \
            for (size_t n = 0; n < NT; n += 2 * W) {                                                             \
                for (size_t m = 0; m < M8; m += 8) rt_tile8_##NAME(m, n, k0, k1, A, a_row, a_col, B, ldb, C, ldc); \
                for (size_t m = M8; m < M4; m += 4) rt_tile4_##NAME(m, n, k0, k1, A, a_row, a_col, B, ldb, C, ldc); \
                for (size_t m = M4; m < M; m++) rt_tile1_##NAME(m, n, k0, k1, A, a_row, a_col, B, ldb, C, ldc);  \
            }                                                                                                    \
        } else {                                                                                                 \
            /* Many rows: a block of A rows stays in L1 while the chunk of B streams from L2. */                  \
            size_t M8 = ROWS8 ? M & ~(size_t)7 : 0;                                                              \
            for (size_t m = 0; m < M8; m += 8)                                                                   \
                for (size_t n = 0; n < NT; n += 2 * W) rt_tile8_##NAME(m, n, k0, k1, A, a_row, a_col, B, ldb, C, ldc); \
            for (size_t m = M8; m < M4; m += 4)                                                                  \
                for (size_t n = 0; n < NT; n += 2 * W) rt_tile4_##NAME(m, n, k0, k1, A, a_row, a_col, B, ldb, C, ldc); \
            for (size_t m = M4; m < M; m++)                                                                      \
                for (size_t n = 0; n < NT; n += 2 * W) rt_tile1_##NAME(m, n, k0, k1, A, a_row, a_col, B, ldb, C, ldc); \
        }                                                                                                        \
        for (size_t n = NT; n < N; n++) {                                                                        \
            for (size_t m = 0; m < M; m++) {                                                                     \
                const float *a0 = A + m * a_row;                                                                 \
                float x0 = C[m * ldc + n];                                                                       \
                for (size_t k = k0; k < k1; k++) x0 += a0[k * a_col] * B[k * ldb + n];                           \
                C[m * ldc + n] = x0;                                                                             \
            }                                                                                                    \
        }                                                                                                        \
    }                                                                                                            \
}

RT_GEMM_FAMILY(baseline, rt_v8, 8, , 0)

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
static int rt_has_avx2(void) {
    static int known = -1;  /* a benign race: every thread computes the same value */
    if (known < 0) known = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    return known;
}

static int rt_has_avx512(void) {
    static int known = -1;
    if (known < 0) known = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma");
    return known;
}

RT_GEMM_FAMILY(avx2, rt_v8, 8, __attribute__((target("avx2,fma"))), 0)
/* 32 vector registers: an 8-row tile (16 accumulators) halves the loads of B per FMA. */
RT_GEMM_FAMILY(avx512, rt_v16, 16, __attribute__((target("avx512f,fma"))), 1)
#define RT_HAVE_AVX2_PATH 1
#endif

void rt_gemm(size_t M, size_t N, size_t K, const float *A, size_t a_row, size_t a_col,
             const float *B, size_t ldb, float *C, size_t ldc, int accumulate) {
    if (!accumulate)
        for (size_t m = 0; m < M; m++) memset(C + m * ldc, 0, N * sizeof(float));
#ifdef RT_HAVE_AVX2_PATH
    if (rt_has_avx512()) {
        rt_gemm_avx512(M, N, K, A, a_row, a_col, B, ldb, C, ldc);
        return;
    }
    if (rt_has_avx2()) {
        rt_gemm_avx2(M, N, K, A, a_row, a_col, B, ldb, C, ldc);
        return;
    }
#endif
    rt_gemm_baseline(M, N, K, A, a_row, a_col, B, ldb, C, ldc);
}

void rt_transpose(size_t M, size_t N, const float *in, size_t ldin, float *out) {
    /* In 32 × 32 blocks, so both the rows read and the rows written stay in cache. */
    for (size_t m0 = 0; m0 < M; m0 += 32)
        for (size_t n0 = 0; n0 < N; n0 += 32) {
            size_t m1 = m0 + 32 < M ? m0 + 32 : M, n1 = n0 + 32 < N ? n0 + 32 : N;
            for (size_t m = m0; m < m1; m++)
                for (size_t n = n0; n < n1; n++) out[n * M + m] = in[m * ldin + n];
        }
}

void rt_add_bias_rows(size_t M, size_t N, const float *bias, float *C, size_t ldc) {
    for (size_t m = 0; m < M; m++) {
        float *restrict c = C + m * ldc;
        for (size_t n = 0; n < N; n++) c[n] += bias[n];
    }
}

void rt_add_column_sums(size_t M, size_t N, const float *A, size_t lda, float *out) {
    for (size_t m = 0; m < M; m++) {
        const float *restrict a = A + m * lda;
        for (size_t n = 0; n < N; n++) out[n] += a[n];
    }
}

/* In place over n values; simple loops so they vectorise (rt_expf is branch-free). */
static inline __attribute__((always_inline)) void rt_sigmoid_into(size_t n, const float *restrict x, const float *restrict y, float *restrict out) {
    for (size_t j = 0; j < n; j++) out[j] = 1.0f / (1.0f + rt_expf(-(x[j] + y[j])));
}

static inline __attribute__((always_inline)) void rt_tanh_into(size_t n, const float *restrict x, const float *restrict y, float *restrict out) {
    for (size_t j = 0; j < n; j++) out[j] = 1.0f - 2.0f / (rt_expf(2.0f * (x[j] + y[j])) + 1.0f);
}

/* c' = f ⊙ c + i ⊙ g;  h' = o ⊙ tanh(c'), keeping tanh(c'). Pointers are parameters so that
   `restrict` holds (LLVM ignores it on local pointers and would guard the vector loop at run time). */
static inline __attribute__((always_inline)) void rt_lstm_state_update(size_t H, const float *restrict i, const float *restrict f,
                                                                       const float *restrict g, const float *restrict o,
                                                                       float *restrict c, float *restrict h, float *restrict tc) {
    for (size_t j = 0; j < H; j++) {
        float cn = f[j] * c[j] + i[j] * g[j];
        tc[j] = fast_tanhf(cn);
        c[j] = cn;
        h[j] = o[j] * tc[j];
    }
}

static inline __attribute__((always_inline)) void rt_lstm_forward_body(size_t B, size_t H, const float *gx, size_t ldgx, const float *gh,
                                                                       float *c, float *h, float *act, size_t ldact, const uint8_t *active) {
    for (size_t b = 0; b < B; b++) {
        if (active && !active[b]) continue;
        const float *x = gx + b * ldgx, *r = gh + b * 4 * H;
        float *a = act + b * ldact;
        rt_sigmoid_into(2 * H, x, r, a);                 /* i, f */
        rt_tanh_into(H, x + 2 * H, r + 2 * H, a + 2 * H);  /* g */
        rt_sigmoid_into(H, x + 3 * H, r + 3 * H, a + 3 * H);  /* o */
        rt_lstm_state_update(H, a, a + H, a + 2 * H, a + 3 * H, c + b * H, h + b * H, a + 4 * H);
    }
}

/* Row kernel of rt_lstm_backward_step (restrict parameters: see rt_lstm_state_update). */
static inline __attribute__((always_inline)) void rt_lstm_backward_row(size_t H, const float *restrict a, const float *restrict cp,
                                                                       float *restrict dhb, float *restrict dcb, float *restrict g) {
    for (size_t j = 0; j < H; j++) {
        float i = a[j], f = a[H + j], gg = a[2 * H + j], o = a[3 * H + j], tc = a[4 * H + j];
        // h' = o ⊙ tanh(c')
        float dcn = dcb[j] + dhb[j] * o * (1.0f - tc * tc);
        float d_o = dhb[j] * tc;
        // c' = f ⊙ c + i ⊙ g
        float d_i = dcn * gg, d_f = dcn * cp[j], d_g = dcn * i;
        dcb[j] = dcn * f;
        // i, f, o = σ(·); g = tanh(·)
        g[j] = d_i * i * (1.0f - i);
        g[H + j] = d_f * f * (1.0f - f);
        g[2 * H + j] = d_g * (1.0f - gg * gg);
        g[3 * H + j] = d_o * o * (1.0f - o);
        dhb[j] = 0.0f;
    }
}

void rt_lstm_backward_step(size_t B, size_t H, const float *act, size_t ldact, const float *cprev, size_t ldc,
                           float *dh, float *dc, float *dg, size_t lddg, const uint8_t *active) {
    for (size_t b = 0; b < B; b++) {
        float *g = dg + b * lddg;
        if (active && !active[b]) { memset(g, 0, 4 * H * sizeof(float)); continue; }
        rt_lstm_backward_row(H, act + b * ldact, cprev + b * ldc, dh + b * H, dc + b * H, g);
    }
}

static inline __attribute__((always_inline)) void rt_gru_forward_row(size_t H, const float *restrict x, const float *restrict r,
                                                                     float *restrict hb, float *restrict a) {
    for (size_t j = 0; j < H; j++) {
        float rg = sigmoidf(x[j] + r[j]);
        float z = sigmoidf(x[H + j] + r[H + j]);
        float n = fast_tanhf(x[2 * H + j] + rg * r[2 * H + j]);
        a[j] = rg; a[H + j] = z; a[2 * H + j] = n; a[3 * H + j] = r[2 * H + j];
        hb[j] = (1.0f - z) * n + z * hb[j];
    }
}

static inline __attribute__((always_inline)) void rt_gru_forward_body(size_t B, size_t H, const float *gx, size_t ldgx, const float *gh,
                                                                      float *h, float *act, size_t ldact, const uint8_t *active) {
    for (size_t b = 0; b < B; b++) {
        if (active && !active[b]) continue;
        rt_gru_forward_row(H, gx + b * ldgx, gh + b * 3 * H, h + b * H, act + b * ldact);
    }
}

static inline __attribute__((always_inline)) void rt_gru_backward_row(size_t H, const float *restrict a, const float *restrict hp,
                                                                      float *restrict dhb, float *restrict gx, float *restrict gh) {
    for (size_t j = 0; j < H; j++) {
        float r = a[j], z = a[H + j], n = a[2 * H + j], ghn = a[3 * H + j], d = dhb[j];
        // h' = (1 − z) ⊙ n + z ⊙ h
        float dn = d * (1.0f - z), dz = d * (hp[j] - n);
        // n = tanh(gx_n + r ⊙ gh_n)
        float dan = dn * (1.0f - n * n);
        float dr = dan * ghn;
        // r, z = σ(·)
        float dar = dr * r * (1.0f - r), daz = dz * z * (1.0f - z);
        gx[j] = dar; gx[H + j] = daz; gx[2 * H + j] = dan;
        gh[j] = dar; gh[H + j] = daz; gh[2 * H + j] = dan * r;
        dhb[j] = d * z;
    }
}

void rt_gru_backward_step(size_t B, size_t H, const float *act, size_t ldact, const float *hprev, size_t ldh,
                          float *dh, float *dgx, size_t lddgx, float *dgh, size_t lddgh, const uint8_t *active) {
    for (size_t b = 0; b < B; b++) {
        float *gx = dgx + b * lddgx, *gh = dgh + b * lddgh;
        if (active && !active[b]) {
            memset(gx, 0, 3 * H * sizeof(float));
            memset(gh, 0, 3 * H * sizeof(float));
            continue;
        }
        rt_gru_backward_row(H, act + b * ldact, hprev + b * ldh, dh + b * H, gx, gh);
    }
}

static inline __attribute__((always_inline)) void rt_rnn_forward_row(size_t H, const float *restrict x, const float *restrict r,
                                                                     float *restrict hb, float *restrict a, int relu) {
    for (size_t j = 0; j < H; j++) {
        float v = x[j] + r[j];
        hb[j] = a[j] = relu ? (v > 0.0f ? v : 0.0f) : fast_tanhf(v);
    }
}

static inline __attribute__((always_inline)) void rt_rnn_forward_body(size_t B, size_t H, const float *gx, size_t ldgx, const float *gh,
                                                                      float *h, float *act, size_t ldact, int relu, const uint8_t *active) {
    for (size_t b = 0; b < B; b++) {
        if (active && !active[b]) continue;
        rt_rnn_forward_row(H, gx + b * ldgx, gh + b * H, h + b * H, act + b * ldact, relu);
    }
}

static inline __attribute__((always_inline)) void rt_rnn_backward_row(size_t H, const float *restrict a, float *restrict dhb,
                                                                      float *restrict g, int relu) {
    for (size_t j = 0; j < H; j++) {
        // h' = relu(a) or tanh(a)
        g[j] = relu ? (a[j] > 0.0f ? dhb[j] : 0.0f) : dhb[j] * (1.0f - a[j] * a[j]);
        dhb[j] = 0.0f;
    }
}

void rt_rnn_backward_step(size_t B, size_t H, const float *act, size_t ldact, float *dh,
                          float *dg, size_t lddg, int relu, const uint8_t *active) {
    for (size_t b = 0; b < B; b++) {
        float *g = dg + b * lddg;
        if (active && !active[b]) { memset(g, 0, H * sizeof(float)); continue; }
        rt_rnn_backward_row(H, act + b * ldact, dh + b * H, g, relu);
    }
}

double rt_cross_entropy(size_t rows, size_t width, const float *x, const int32_t *target,
                        float scale, float *dx, size_t *correct) {
    double loss = 0.0;
    for (size_t r = 0; r < rows; r++) {
        const float *xr = x + r * width;
        float *d = dx ? dx + r * width : NULL;
        int32_t t = target[r];
        if (t < 0 || (size_t)t >= width) {
            if (d) memset(d, 0, width * sizeof(float));
            continue;
        }
        float m = xr[0];
        size_t best = 0;
        for (size_t j = 1; j < width; j++) if (xr[j] > m) { m = xr[j]; best = j; }
        double sum = 0.0;
        for (size_t j = 0; j < width; j++) sum += exp((double)(xr[j] - m));
        double lse = (double)m + log(sum);
        loss += lse - (double)xr[t];
        if (best == (size_t)t) (*correct)++;
        if (d) {
            for (size_t j = 0; j < width; j++) d[j] = scale * (float)exp((double)xr[j] - lse);
            d[t] -= scale;
        }
    }
    return loss;
}

void rt_adam(size_t n, float *w, const float *g, float *m, float *v, float lr, float beta1,
             float beta2, float eps, long t) {
    float c1 = 1.0f - powf(beta1, (float)t), c2 = 1.0f - powf(beta2, (float)t);
    float step = lr / c1, root_c2 = sqrtf(c2);
    for (size_t i = 0; i < n; i++) {
        m[i] = beta1 * m[i] + (1.0f - beta1) * g[i];
        v[i] = beta2 * v[i] + (1.0f - beta2) * g[i] * g[i];
        w[i] -= step * m[i] / (sqrtf(v[i]) / root_c2 + eps);
    }
}

void rt_sgd_momentum(size_t n, float *w, const float *g, float *velocity, float lr, float momentum) {
    for (size_t i = 0; i < n; i++) {
        velocity[i] = momentum * velocity[i] + g[i];
        w[i] -= lr * velocity[i];
    }
}

/* The forward steps call rt_expf per element: compiled for AVX2+FMA too, chosen at run time. */
#ifdef RT_HAVE_AVX2_PATH
#define RT_AVX2_VARIANT(body, params, args) \
    __attribute__((target("avx2,fma"))) static void body##_avx2 params { body args; }
#define RT_DISPATCH(body, args) \
    if (rt_has_avx2()) { body##_avx2 args; return; }
#else
#define RT_AVX2_VARIANT(body, params, args)
#define RT_DISPATCH(body, args)
#endif

#define RT_LSTM_PARAMS (size_t B, size_t H, const float *gx, size_t ldgx, const float *gh, float *c, float *h, float *act, size_t ldact, const uint8_t *active)
#define RT_LSTM_ARGS (B, H, gx, ldgx, gh, c, h, act, ldact, active)
RT_AVX2_VARIANT(rt_lstm_forward_body, RT_LSTM_PARAMS, RT_LSTM_ARGS)
void rt_lstm_forward_step RT_LSTM_PARAMS {
    RT_DISPATCH(rt_lstm_forward_body, RT_LSTM_ARGS)
    rt_lstm_forward_body RT_LSTM_ARGS;
}

#define RT_GRU_PARAMS (size_t B, size_t H, const float *gx, size_t ldgx, const float *gh, float *h, float *act, size_t ldact, const uint8_t *active)
#define RT_GRU_ARGS (B, H, gx, ldgx, gh, h, act, ldact, active)
RT_AVX2_VARIANT(rt_gru_forward_body, RT_GRU_PARAMS, RT_GRU_ARGS)
void rt_gru_forward_step RT_GRU_PARAMS {
    RT_DISPATCH(rt_gru_forward_body, RT_GRU_ARGS)
    rt_gru_forward_body RT_GRU_ARGS;
}

#define RT_RNN_PARAMS (size_t B, size_t H, const float *gx, size_t ldgx, const float *gh, float *h, float *act, size_t ldact, int relu, const uint8_t *active)
#define RT_RNN_ARGS (B, H, gx, ldgx, gh, h, act, ldact, relu, active)
RT_AVX2_VARIANT(rt_rnn_forward_body, RT_RNN_PARAMS, RT_RNN_ARGS)
void rt_rnn_forward_step RT_RNN_PARAMS {
    RT_DISPATCH(rt_rnn_forward_body, RT_RNN_ARGS)
    rt_rnn_forward_body RT_RNN_ARGS;
}

void rt_retain_freed_memory(void) {
#if defined(__GLIBC__)
    mallopt(M_MMAP_THRESHOLD, 1 << 30);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
#endif
}
