/*
 * Where the pool's workers may run, and when sleeping ones are woken (pool.c: keep_workers_off_caller,
 * thread_budget, sequence_threads).
 *
 *   placement          the calling thread pinned to one CPU, then to another: after a product on the
 *                      pool, every worker may run on each of the process's CPUs but the caller's
 *   placement confined the thread that starts the pool confined to one CPU: no worker is started, and
 *                      the product still computes
 *   placement burst    a lone sequence too small to wake a sleeping worker for one call (pool.c,
 *                      sequence_threads): called 1 ms apart for 40 ms it leaves the workers asleep,
 *                      called back to back for 40 ms it brings them in, and called back to back by two
 *                      threads at once, which find the pool taken by each other, it leaves them asleep
 *
 * Needs two CPUs or more; with fewer it says so on stderr and exits 2, which run.sh reports as not run.
 * Exits 1 on the first wrong placement or wake, printing what it found.
 */
#define _GNU_SOURCE
#include "recur_kernels.h"
#include <dirent.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { M = 64, N = 64, K = 128 }; /* 2^19 multiply-adds: enough to take the pool */

static float X[M * K], W[N * K], Y[M * N];

/* Y = X · Wᵀ on the pool; 1 when it matches a plain loop. */
static int product_computes(void) {
    for (size_t i = 0; i < M * K; i++) X[i] = (float)(i % 7) - 3;
    for (size_t i = 0; i < N * K; i++) W[i] = (float)(i % 5) - 2;
    float *packed = malloc(rk_gemm_packed_size(N, K) * sizeof(float));
    if (!packed) return 0;
    rk_gemm_pack(N, K, W, packed);
    rk_gemm_packed_parallel(M, N, K, X, K, packed, NULL, Y, N);
    free(packed);
    for (size_t m = 0; m < M; m++)
        for (size_t n = 0; n < N; n++) {
            float sum = 0; /* small integers: exact in any order */
            for (size_t k = 0; k < K; k++) sum += X[m * K + k] * W[n * K + k];
            if (Y[m * N + n] != sum) return 0;
        }
    return 1;
}

static int pin_self(int cpu) {
    cpu_set_t one;
    CPU_ZERO(&one);
    CPU_SET(cpu, &one);
    return sched_setaffinity(0, sizeof one, &one) == 0;
}

/* The threads of this process other than the calling one, up to `capacity`; their count. */
static size_t other_threads(pid_t *tids, size_t capacity) {
    DIR *tasks = opendir("/proc/self/task");
    if (!tasks) return 0;
    size_t count = 0;
    pid_t self = gettid();
    for (struct dirent *entry; (entry = readdir(tasks)) != NULL;) {
        pid_t tid = (pid_t)atoi(entry->d_name);
        if (tid > 0 && tid != self && count < capacity) tids[count++] = tid;
    }
    closedir(tasks);
    return count;
}

/* Pinned to `caller`, a product; then every worker may run on exactly `process` less `caller`. */
static int workers_kept_off(const cpu_set_t *process, int caller) {
    if (!pin_self(caller)) {
        fprintf(stderr, "placement: cannot pin the caller to CPU %d\n", caller);
        return 0;
    }
    if (!product_computes()) {
        fprintf(stderr, "placement: the product is wrong with the caller on CPU %d\n", caller);
        return 0;
    }
    cpu_set_t expected = *process;
    CPU_CLR(caller, &expected);
    pid_t tids[64];
    size_t count = other_threads(tids, 64);
    if (count == 0) {
        fprintf(stderr, "placement: no worker thread was started\n");
        return 0;
    }
    for (size_t i = 0; i < count; i++) {
        cpu_set_t found;
        if (sched_getaffinity(tids[i], sizeof found, &found) != 0 || !CPU_EQUAL(&found, &expected)) {
            fprintf(stderr, "placement: with the caller on CPU %d, thread %d may run on %d CPUs%s (expected %d, not %d)\n",
                    caller, (int)tids[i], CPU_COUNT(&found), CPU_ISSET(caller, &found) ? " including the caller's" : "",
                    CPU_COUNT(&expected), caller);
            return 0;
        }
    }
    return 1;
}

/* Nanoseconds thread `tid` has run (the first field of its schedstat); -1 when unreadable. */
static long long run_nanoseconds(pid_t tid) {
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%d/schedstat", (int)tid);
    FILE *file = fopen(path, "r");
    if (!file) return -1;
    long long ns = -1;
    if (fscanf(file, "%lld", &ns) != 1) ns = -1;
    fclose(file);
    return ns;
}

/* What the workers ran, together, in nanoseconds; -1 when unreadable. */
static long long workers_run_nanoseconds(void) {
    pid_t tids[64];
    size_t count = other_threads(tids, 64);
    long long total = 0;
    for (size_t i = 0; i < count; i++) {
        long long ns = run_nanoseconds(tids[i]);
        if (ns < 0) return -1;
        total += ns;
    }
    return total;
}

static double seconds_now(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + now.tv_nsec * 1e-9;
}

/* Calls an LSTM of 75 units over 145 inputs at batch 1, 50 steps (zero weights: only the threads
   matter) for `seconds`, `pause` seconds between calls: steps of 22 500 multiply-adds, below
   MIN_PARALLEL_STEP_WORK, and 2.2 million of input projection, between MIN_PARALLEL_WORK and
   WAKING_WORK. Returns the calls made, or -1 when out of memory. */
static long call_small_lstm(double seconds, double pause) {
    enum { B = 1, T = 50, I = 145, H = 75, G = 4 };
    size_t columns = rk_gate_columns(G, H), partial = rk_step_partial_size(G, B, H, RK_WEIGHTS_FLOAT32);
    float *x = calloc(B * T * I, sizeof(float)), *input = calloc(rk_input_packed_size(G, H, I), sizeof(float));
    float *recurrent = calloc(rk_recurrent_packed_size(G, H), sizeof(float)), *gx = calloc(T * B * columns, sizeof(float));
    float *h = calloc(B * H, sizeof(float)), *h_spare = calloc(B * H, sizeof(float)), *c = calloc(B * H, sizeof(float));
    float *y = calloc(B * T * H, sizeof(float)), *workspace = calloc(RK_MAX_THREADS * partial, sizeof(float));
    long calls = 0;
    int allocated = x && input && recurrent && gx && h && h_spare && c && y && workspace;
    if (allocated) {
        rk_sequence s = {.cell = RK_CELL_LSTM, .batch = B, .steps = T, .input_size = I, .hidden = H, .x = x, .ldx = I,
                         .input_weights = input, .recurrent_weights = recurrent, .gx = gx, .h = h, .h_spare = h_spare,
                         .partial = workspace, .c = c, .y = y, .ldy = H};
        struct timespec gap = {0, (long)(pause * 1e9)};
        for (double end = seconds_now() + seconds; seconds_now() < end; calls++) {
            rk_run_sequences(&s, 1);
            if (pause > 0) nanosleep(&gap, NULL);
        }
    }
    free(x), free(input), free(recurrent), free(gx), free(h), free(h_spare), free(c), free(y), free(workspace);
    return allocated ? calls : -1;
}

static void *second_caller(void *seconds) { return call_small_lstm(*(double *)seconds, 0) >= 0 ? seconds : NULL; }

/* The milliseconds the workers ran while `callers` threads (1 or 2; the second back to back) called
   the small LSTM for `seconds`, and in *calls the first caller's calls; -1 when the run time is
   unreadable or a call could not be made. */
static double workers_ms_while_calling(double seconds, double pause, int callers, long *calls) {
    long long before = workers_run_nanoseconds(); /* before the second caller exists, and after it has gone */
    pthread_t second;
    if (callers > 1 && pthread_create(&second, NULL, second_caller, &seconds) != 0) return -1;
    *calls = call_small_lstm(seconds, pause);
    void *second_called = &seconds;
    if (callers > 1) pthread_join(second, &second_called);
    long long after = workers_run_nanoseconds();
    return before >= 0 && after >= 0 && *calls >= 0 && second_called ? (double)(after - before) / 1e6 : -1;
}

/* How long a woken worker spins for the next job before it sleeps (pool.c, IDLE_SPIN_NANOSECONDS). */
static const double IDLE_SPIN_MS = 0.2;
/* How long each way of calling lasts. */
static const double CALLING_SECONDS = 0.04;

/* The workers asleep (the pool started, then idle well past its spin): one caller's calls 1 ms apart
   leave them so, and its calls back to back wake them, which then run for a good part of each call or
   of the spin after it, whichever is shorter (calls of 0.1 ms spin them through the 40 ms; under
   AddressSanitizer on a slow host a call took 2–3 ms, and a worker done with its share of one spins
   its 0.2 ms and sleeps until the next wakes it); two callers back to back find the pool taken by each
   other and leave it (a wake, then a spin of 200 µs). */
static int burst_wakes_workers(void) {
    if (!product_computes()) {
        fprintf(stderr, "placement: the product is wrong\n");
        return 0;
    }
    struct timespec idle = {0, 50 * 1000 * 1000};
    nanosleep(&idle, NULL);
    long sparse_calls, burst_calls, contended_calls;
    double sparse = workers_ms_while_calling(CALLING_SECONDS, 0.001, 1, &sparse_calls);
    double burst = workers_ms_while_calling(CALLING_SECONDS, 0, 1, &burst_calls);
    double contended = workers_ms_while_calling(CALLING_SECONDS, 0, 2, &contended_calls);
    if (sparse < 0 || burst < 0 || contended < 0) {
        fprintf(stderr, "placement: cannot read the workers' run time (/proc/self/task/*/schedstat), allocate or "
                        "start a thread\n");
        return 0;
    }
    double call_ms = CALLING_SECONDS * 1e3 / (double)(burst_calls > 0 ? burst_calls : 1);
    double burst_expected = 0.25 * (double)burst_calls * (call_ms < IDLE_SPIN_MS ? call_ms : IDLE_SPIN_MS);
    if (sparse > 1 || burst < burst_expected || contended > 8) {
        fprintf(stderr, "placement: the workers ran %.2f ms while one caller's calls came 1 ms apart (expected under 1), "
                        "%.2f ms while its %ld calls came back to back (expected %.2f or more) and %.2f ms while two "
                        "callers' did (expected under 8), each for 40 ms\n", sparse, burst, burst_calls, burst_expected,
                contended);
        return 0;
    }
    return 1;
}

int main(int argc, char **argv) {
    cpu_set_t process;
    if (sched_getaffinity(0, sizeof process, &process) != 0 || CPU_COUNT(&process) < 2) {
        fprintf(stderr, "placement: needs two CPUs or more\n");
        return 2;
    }
    int first = -1, second = -1;
    for (int cpu = 0; cpu < CPU_SETSIZE && second < 0; cpu++)
        if (CPU_ISSET(cpu, &process)) *(first < 0 ? &first : &second) = cpu;

    if (argc > 1 && strcmp(argv[1], "burst") == 0) return burst_wakes_workers() ? 0 : 1;
    if (argc > 1 && strcmp(argv[1], "confined") == 0) {
        pid_t tids[64];
        if (!pin_self(first) || !product_computes()) {
            fprintf(stderr, "placement: confined to CPU %d, the product failed\n", first);
            return 1;
        }
        size_t count = other_threads(tids, 64);
        if (count != 0) {
            fprintf(stderr, "placement: confined to one CPU, the pool started %zu threads\n", count);
            return 1;
        }
        return 0;
    }
    /* The pool starts with the CPUs of the thread that starts it, so first from the unpinned thread. */
    if (!product_computes()) {
        fprintf(stderr, "placement: the product is wrong\n");
        return 1;
    }
    /* Each CPU twice over, so that the workers move off a CPU they were kept on before. */
    int callers[] = {first, second, first, second};
    for (size_t i = 0; i < sizeof callers / sizeof *callers; i++)
        if (!workers_kept_off(&process, callers[i])) return 1;
    return 0;
}
