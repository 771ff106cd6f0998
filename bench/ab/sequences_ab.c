/*
 * Same-process A/B timing of the recurrent kernels: the kernels of an older commit (compiled with
 * every public name prefixed `old_`, see run.sh) and the working tree's, run on the same sequences
 * alternately (each side first every other round), so both meet the same machine weather. On the shared development VM a kernel's speed
 * drifts by up to 2x within minutes; timings taken minutes apart could not resolve 5-20% changes,
 * alternating runs in one process can.
 *
 *   sequences_ab CELL B T I H D ROUNDS      (CELL: 0 rnn-tanh, 2 lstm, 3 gru; D: 1 or 2 directions)
 *
 * RECUR_AB_BACK_TO_BACK=N times N passes run back to back (workers awake) instead of one from asleep.
 * RECUR_AB_HALF=1 holds W_hh in half precision on both sides (rk_recurrent_pack_half), with a workspace
 * for the widened weights that a side whose rule widens them uses (older commits ignore it);
 * RECUR_AB_HALF=new on the new side alone, against float32 on the old (the outputs then differ).
 *
 * Prints the median and fastest time of each side and new/old, and whether the two computed the
 * same bits (they should unless the numerics were meant to change). Each side packs its own weights;
 * both are handed the working tree's rk_sequence, so the older commit's must have the same layout
 * (W_ih packed in the gate order, rk_input_pack: commits from the one that added it on; fields added
 * at its end since, for products in bfloat16, are left NULL).
 */
#include "recur_kernels.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>

/* The older commit's kernels (old_kernels.c). */
size_t old_rk_gate_columns(size_t gates, size_t H);
size_t old_rk_input_packed_size(size_t gates, size_t H, size_t I);
void old_rk_input_pack(size_t gates, size_t H, size_t I, const float *W, float *P);
void old_rk_input_bias_pack(size_t gates, size_t H, const float *bias, float *P);
size_t old_rk_recurrent_packed_size(size_t gates, size_t H);
void old_rk_recurrent_pack(size_t gates, size_t H, const float *W, float *P);
void old_rk_recurrent_pack_half(size_t gates, size_t H, const float *W, uint16_t *P);
/* Older commits' took (gates, batch) alone; the arguments they do not take are ignored (x86-64 and
   AArch64 calling conventions pass them in registers). */
size_t old_rk_step_partial_size(size_t gates, size_t batch, size_t hidden, rk_weights weights);
void old_rk_run_sequences(const rk_sequence *sequences, size_t count);

typedef struct {
    size_t (*gate_columns)(size_t, size_t);
    size_t (*input_packed_size)(size_t, size_t, size_t);
    void (*input_pack)(size_t, size_t, size_t, const float *, float *);
    void (*input_bias_pack)(size_t, size_t, const float *, float *);
    size_t (*recurrent_packed_size)(size_t, size_t);
    void (*recurrent_pack)(size_t, size_t, const float *, float *);
    void (*recurrent_pack_half)(size_t, size_t, const float *, uint16_t *);
    size_t (*step_partial_size)(size_t, size_t, size_t, rk_weights);
    void (*run_sequences)(const rk_sequence *, size_t);
} kernels;

static const kernels old_kernels = {old_rk_gate_columns, old_rk_input_packed_size, old_rk_input_pack,
                                    old_rk_input_bias_pack, old_rk_recurrent_packed_size,
                                    old_rk_recurrent_pack, old_rk_recurrent_pack_half, old_rk_step_partial_size,
                                    old_rk_run_sequences};
static const kernels new_kernels = {rk_gate_columns, rk_input_packed_size, rk_input_pack, rk_input_bias_pack,
                                    rk_recurrent_packed_size, rk_recurrent_pack, rk_recurrent_pack_half,
                                    rk_step_partial_size, rk_run_sequences};

static double seconds(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static float *values(size_t n, unsigned seed) {
    float *p = malloc(n * sizeof(float) + 64);
    for (size_t i = 0; i < n; i++) p[i] = (float)((i * 2654435761u + seed * 40503u) % 1000) / 10000.0f - 0.05f;
    return p;
}

static int by_value(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* `bytes` for packed weights on transparent huge pages, as the engine keeps them (PackedValues.swift):
   on 4 KiB pages, weights streamed from L3 every step measured slower than the engine runs them. */
static void *weights_memory(size_t bytes) {
    size_t huge = 2u << 20, rounded = (bytes + huge - 1) / huge * huge;
    void *p = aligned_alloc(huge, rounded);
    if (p) madvise(p, rounded, MADV_HUGEPAGE);
    return p;
}

/* One side's sequences: its own packed weights and workspaces, the shared input x, output y [B, T, D·H];
   W_hh in half precision with `half`. */
static void prepare(const kernels *k, rk_cell cell, size_t B, size_t T, size_t I, size_t H, size_t D, int half,
                    const float *x, float *y, rk_sequence *sequences) {
    size_t G = rk_cell_gates(cell);
    for (size_t d = 0; d < D; d++) {
        float *input = values(G * H * I, 2 + d), *recurrent = values(G * H * H, 4 + d);
        float *input_packed = weights_memory(k->input_packed_size(G, H, I) * sizeof(float));
        float *bias = values(G * H, 6 + d), *bias_packed = malloc(k->gate_columns(G, H) * sizeof(float));
        float *recurrent_packed = weights_memory(k->recurrent_packed_size(G, H) * sizeof(float));
        uint16_t *recurrent_half = half ? weights_memory(k->recurrent_packed_size(G, H) * sizeof(uint16_t)) : NULL;
        k->input_pack(G, H, I, input, input_packed);
        k->input_bias_pack(G, H, bias, bias_packed);
        if (half) k->recurrent_pack_half(G, H, recurrent, recurrent_half);
        else k->recurrent_pack(G, H, recurrent, recurrent_packed);
        free(input), free(recurrent), free(bias);
        sequences[d] = (rk_sequence){
            .cell = cell, .batch = B, .steps = T, .input_size = I, .hidden = H, .x = x, .ldx = I,
            .input_weights = input_packed, .input_bias = bias_packed,
            .recurrent_weights = half ? NULL : recurrent_packed, .recurrent_half_weights = recurrent_half,
            .recurrent_widened = half ? recurrent_packed : NULL,
            .recurrent_bias = cell == RK_CELL_GRU ? values(H, 8 + d) : NULL, .reverse = (int)d,
            .gx = malloc(B * T * k->gate_columns(G, H) * sizeof(float)), .h = malloc(B * H * sizeof(float)),
            .h_spare = malloc(B * H * sizeof(float)),
            /* float32's size, never less than the halves' (and what widened halves need in commits
               before 477df77, whose size for half weights did not count them) */
            .partial = malloc(RK_MAX_THREADS * k->step_partial_size(G, B, H, RK_WEIGHTS_FLOAT32) * sizeof(float)),
            .c = cell == RK_CELL_LSTM ? malloc(B * H * sizeof(float)) : NULL, .y = y + d * H, .ldy = D * H,
        };
    }
}

static void run_once(const kernels *k, rk_sequence *sequences, size_t D) {
    for (size_t d = 0; d < D; d++) {
        size_t n = sequences[d].batch * sequences[d].hidden;
        memset(sequences[d].h, 0, n * sizeof(float));
        if (sequences[d].c) memset(sequences[d].c, 0, n * sizeof(float));
    }
    k->run_sequences(sequences, D);
}

/* One timed pass, after the other side's idle worker has stopped spinning (it spins 200 µs). With
   back_to_back > 0, an untimed pass wakes the side's workers and the time is the mean of that many
   passes run back to back, as a caller serving requests one after another meets them (workers still
   spinning); else one pass from asleep. */
static double run(const kernels *k, rk_sequence *sequences, size_t D, size_t back_to_back) {
    nanosleep(&(struct timespec){0, 500000}, NULL);
    if (back_to_back > 0) run_once(k, sequences, D);
    size_t passes = back_to_back > 0 ? back_to_back : 1;
    double start = seconds();
    for (size_t i = 0; i < passes; i++) run_once(k, sequences, D);
    return (seconds() - start) / (double)passes;
}

int main(int argc, char **argv) {
    if (argc != 8) {
        fprintf(stderr, "usage: %s CELL B T I H D ROUNDS\n", argv[0]);
        return 2;
    }
    rk_cell cell = (rk_cell)atoi(argv[1]);
    size_t B = strtoul(argv[2], NULL, 10), T = strtoul(argv[3], NULL, 10), I = strtoul(argv[4], NULL, 10);
    size_t H = strtoul(argv[5], NULL, 10), D = strtoul(argv[6], NULL, 10), rounds = strtoul(argv[7], NULL, 10);
    if (D < 1 || D > 2 || rounds < 1 || rounds > 1000 || B * T * I * H == 0) {
        fprintf(stderr, "sequences_ab: D must be 1 or 2, ROUNDS 1-1000, sizes positive\n");
        return 2;
    }
    size_t outputs = B * T * D * H;
    float *x = values(B * T * I, 1), *y_old = malloc(outputs * sizeof(float)), *y_new = malloc(outputs * sizeof(float));
    rk_sequence old_sequences[2], new_sequences[2];
    const char *half_setting = getenv("RECUR_AB_HALF");
    int new_half = half_setting && (atoi(half_setting) != 0 || strcmp(half_setting, "new") == 0);
    int old_half = new_half && strcmp(half_setting, "new") != 0;
    prepare(&old_kernels, cell, B, T, I, H, D, old_half, x, y_old, old_sequences);
    prepare(&new_kernels, cell, B, T, I, H, D, new_half, x, y_new, new_sequences);
    const char *setting = getenv("RECUR_AB_BACK_TO_BACK");
    size_t back_to_back = setting ? strtoul(setting, NULL, 10) : 0;
    double *old_times = malloc(rounds * sizeof(double)), *new_times = malloc(rounds * sizeof(double));
    for (size_t r = 0; r < rounds; r++) {
        /* Each side goes first every other round. */
        if (r % 2 == 0) old_times[r] = run(&old_kernels, old_sequences, D, back_to_back);
        new_times[r] = run(&new_kernels, new_sequences, D, back_to_back);
        if (r % 2 == 1) old_times[r] = run(&old_kernels, old_sequences, D, back_to_back);
    }
    int same = memcmp(y_old, y_new, outputs * sizeof(float)) == 0;
    qsort(old_times, rounds, sizeof(double), by_value);
    qsort(new_times, rounds, sizeof(double), by_value);
    double old_median = old_times[rounds / 2], new_median = new_times[rounds / 2];
    printf("cell %d B %zu T %zu I %zu H %zu D %zu: old %.3f ms (fastest %.3f), new %.3f ms (fastest %.3f), "
           "new/old %.3f; outputs %s\n",
           (int)cell, B, T, I, H, D, old_median * 1e3, old_times[0] * 1e3, new_median * 1e3, new_times[0] * 1e3,
           new_median / old_median, same ? "the same bits" : "differ");
    return 0;
}
