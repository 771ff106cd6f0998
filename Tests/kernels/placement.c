/*
 * Where the pool's workers may run (pool.c, keep_workers_off_caller and thread_budget).
 *
 *   placement          the calling thread pinned to one CPU, then to another: after a product on the
 *                      pool, every worker may run on each of the process's CPUs but the caller's
 *   placement confined the thread that starts the pool confined to one CPU: no worker is started, and
 *                      the product still computes
 *
 * Needs two CPUs or more; with fewer it says so on stderr and exits 2, which run.sh reports as not run.
 * Exits 1 on the first wrong placement, printing what it found.
 */
#define _GNU_SOURCE
#include "recur_kernels.h"
#include <dirent.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
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

int main(int argc, char **argv) {
    cpu_set_t process;
    if (sched_getaffinity(0, sizeof process, &process) != 0 || CPU_COUNT(&process) < 2) {
        fprintf(stderr, "placement: needs two CPUs or more\n");
        return 2;
    }
    int first = -1, second = -1;
    for (int cpu = 0; cpu < CPU_SETSIZE && second < 0; cpu++)
        if (CPU_ISSET(cpu, &process)) *(first < 0 ? &first : &second) = cpu;

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
