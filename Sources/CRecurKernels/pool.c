// The worker pool and the recurrent sequence runner (recur_kernels.h).
//
// One process-wide pool of (cores − 1) threads that sleep on a futex when idle. A caller that finds
// the pool free borrows it for one task and becomes its thread 0; a caller that finds it busy runs
// the task alone on its own thread. Nobody ever waits for the pool, so concurrent callers and
// nested calls cannot deadlock, and results do not depend on the thread count.
//
// A recurrent sequence is one task: its threads split the input projection by column panels, then
// the hidden units of every step (each thread keeps its slice of W_hh warm in its own cache, as in
// DeepCPU, USENIX ATC 2018), meeting at a spin-then-futex barrier after each step.
#define _GNU_SOURCE
#include "recur_kernels.h"
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#endif

enum { MAX_THREADS = 8 };
/* Per-step products below this many multiply-adds run on one thread: the barrier would cost more. */
enum { MIN_PARALLEL_STEP_WORK = 1 << 16 };
/* How long a waiting thread spins before it sleeps. */
static const long SPIN_NANOSECONDS = 200000;

/* ---- waiting ------------------------------------------------------------------------------ */

static void futex_wait(_Atomic uint32_t *word, uint32_t expected) {
#if defined(__linux__)
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAIT_PRIVATE, expected, NULL, NULL, 0);
#else
    (void)word, (void)expected;
    sched_yield();
#endif
}

static void futex_wake_all(_Atomic uint32_t *word) {
#if defined(__linux__)
    syscall(SYS_futex, (uint32_t *)word, FUTEX_WAKE_PRIVATE, 0x7fffffff, NULL, NULL, 0);
#else
    (void)word;
#endif
}

static void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

static long monotonic_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1000000000L + t.tv_nsec;
}

/* Waits while *word == value: spins first, then sleeps; `sleepers` tells wakers to make the call. */
static void wait_while_equal(_Atomic uint32_t *word, uint32_t value, _Atomic uint32_t *sleepers) {
    long deadline = 0;
    for (unsigned spins = 0; atomic_load_explicit(word, memory_order_acquire) == value; spins++) {
        if ((spins & 63) != 63) {
            cpu_relax();
            continue;
        }
        long now = monotonic_ns();
        if (deadline == 0) deadline = now + SPIN_NANOSECONDS;
        if (now < deadline) continue;
        atomic_fetch_add(sleepers, 1);
        if (atomic_load(word) == value) futex_wait(word, value);
        atomic_fetch_sub(sleepers, 1);
    }
}

/* Sets *word to value and wakes any sleeper. seq_cst pairs with the sleeper's increment-then-check. */
static void publish(_Atomic uint32_t *word, uint32_t value, _Atomic uint32_t *sleepers) {
    atomic_store(word, value);
    if (atomic_load(sleepers) > 0) futex_wake_all(word);
}

/* ---- barrier ------------------------------------------------------------------------------ */

/* Zero-initialised before the threads start; the thread count comes with each wait, so nothing
   needs setting once the threads are known. */
typedef struct {
    _Atomic uint32_t arrived, generation, sleepers;
} barrier;

static void barrier_wait(barrier *b, size_t threads) {
    if (threads <= 1) return;
    uint32_t generation = atomic_load(&b->generation);
    if (atomic_fetch_add(&b->arrived, 1) + 1 == threads) {
        atomic_store(&b->arrived, 0);
        publish(&b->generation, generation + 1, &b->sleepers);
    } else {
        wait_while_equal(&b->generation, generation, &b->sleepers);
    }
}

/* ---- pool --------------------------------------------------------------------------------- */

typedef void (*task_fn)(void *context, size_t thread, size_t threads);

static struct {
    pthread_once_t once;
    size_t workers;
    atomic_flag busy;
    /* A job: published by bumping `generation`; every worker acknowledges by decrementing `pending`. */
    task_fn task;
    void *context;
    size_t threads;
    _Atomic uint32_t generation, job_sleepers;
    _Atomic uint32_t pending, pending_sleepers;
} pool = {.once = PTHREAD_ONCE_INIT, .busy = ATOMIC_FLAG_INIT};

static void *worker_main(void *argument) {
    size_t index = (size_t)(uintptr_t)argument;
    uint32_t seen = 0;
    for (;;) {
        wait_while_equal(&pool.generation, seen, &pool.job_sleepers);
        seen = atomic_load_explicit(&pool.generation, memory_order_acquire);
        if (index < pool.threads) pool.task(pool.context, index, pool.threads);
        if (atomic_fetch_sub(&pool.pending, 1) == 1 && atomic_load(&pool.pending_sleepers) > 0)
            futex_wake_all(&pool.pending);
    }
    return NULL;
}

/* Threads in all: online cores, or RECUR_THREADS when set to a smaller positive number. */
static long thread_budget(void) {
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    const char *setting = getenv("RECUR_THREADS");
    long wanted = setting ? strtol(setting, NULL, 10) : 0;
    return wanted > 0 && wanted < cores ? wanted : cores;
}

static void pool_start(void) {
    long cores = thread_budget();
    size_t wanted = cores > MAX_THREADS ? MAX_THREADS - 1 : cores > 1 ? (size_t)cores - 1 : 0;
    pthread_attr_t attributes;
    pthread_attr_init(&attributes);
    pthread_attr_setstacksize(&attributes, 256 * 1024);
    for (size_t i = 1; i <= wanted; i++) {
        pthread_t thread;
        if (pthread_create(&thread, &attributes, worker_main, (void *)(uintptr_t)i) != 0) break;
        pthread_detach(thread);
        pool.workers = i;
    }
    pthread_attr_destroy(&attributes);
}

/* Runs task(context, i, n) for i in 0 ..< n on n ≤ wanted threads, the caller being thread 0;
   n is 1 when the pool is busy. Returns when every thread has finished. */
static void parallel(task_fn task, void *context, size_t wanted) {
    if (wanted > 1) pthread_once(&pool.once, pool_start);
    size_t threads = wanted < pool.workers + 1 ? wanted : pool.workers + 1;
    if (threads <= 1 || atomic_flag_test_and_set_explicit(&pool.busy, memory_order_acquire)) {
        task(context, 0, 1);
        return;
    }
    pool.task = task;
    pool.context = context;
    pool.threads = threads;
    atomic_store(&pool.pending, (uint32_t)pool.workers);
    publish(&pool.generation, atomic_load(&pool.generation) + 1, &pool.job_sleepers);
    task(context, 0, threads);
    for (uint32_t left; (left = atomic_load(&pool.pending)) != 0;) wait_while_equal(&pool.pending, left, &pool.pending_sleepers);
    atomic_flag_clear_explicit(&pool.busy, memory_order_release);
}

static size_t share(size_t total, size_t part, size_t parts) { return total * part / parts; }

/* ---- matrix product over the pool -------------------------------------------------------- */

typedef struct {
    size_t M, N, K, ldx, ldy;
    const float *X, *P, *bias;
    float *Y;
} gemm_job;

static void gemm_task(void *context, size_t thread, size_t threads) {
    const gemm_job *j = context;
    size_t panels = rk_gemm_panels(j->N);
    rk_gemm_packed(j->M, j->N, j->K, j->X, j->ldx, j->P, j->bias, j->Y, j->ldy,
                   share(panels, thread, threads), share(panels, thread + 1, threads));
}

void rk_gemm_packed_parallel(size_t M, size_t N, size_t K, const float *X, size_t ldx, const float *P,
                             const float *bias, float *Y, size_t ldy) {
    gemm_job job = {M, N, K, ldx, ldy, X, P, bias, Y};
    size_t panels = rk_gemm_panels(N);
    /* A thread gets at least two panels and a few rows; smaller products are not worth a wake-up. */
    size_t wanted = M * N * K >= (1u << 18) ? panels / 2 : 1;
    parallel(gemm_task, &job, wanted > 0 ? wanted : 1);
}

/* ---- sequences ---------------------------------------------------------------------------- */

static size_t gate_count(rk_cell cell) { return cell == RK_CELL_LSTM ? 4 : cell == RK_CELL_GRU ? 3 : 1; }

/* One sequence on `threads` threads of which this is `thread`; `sync` is their barrier. */
static void run_sequence(const rk_sequence *s, size_t thread, size_t threads, barrier *sync) {
    size_t B = s->batch, T = s->steps, H = s->hidden, GH = gate_count(s->cell) * H;
    size_t panels = rk_gemm_panels(GH);
    rk_gemm_packed(B * T, GH, s->input_size, s->x, s->ldx, s->input_weights, s->input_bias, s->gx, GH,
                   share(panels, thread, threads), share(panels, thread + 1, threads));
    barrier_wait(sync, threads);

    size_t units = (H + RK_UNITS - 1) / RK_UNITS;
    size_t unit_begin = share(units, thread, threads), unit_end = share(units, thread + 1, threads);
    size_t length = T;
    if (s->lengths) {
        length = 0;
        for (size_t b = 0; b < B; b++) length = s->lengths[b] > length ? s->lengths[b] : length;
    }
    rk_step step = {
        .cell = s->cell, .batch = B, .hidden = H, .weights = s->recurrent_weights, .bias = s->recurrent_bias,
        .ldgx = T * GH, .c = s->c, .ldy = T * s->ldy, .lengths = s->lengths,
    };
    for (size_t i = 0; i < length; i++) {
        step.t = s->reverse ? length - 1 - i : i;
        step.gx = s->gx + step.t * GH;
        step.y = s->y + step.t * s->ldy;
        step.h_prev = i % 2 == 0 ? s->h : s->h_spare;
        step.h_next = i % 2 == 0 ? s->h_spare : s->h;
        rk_recurrent_step(&step, unit_begin, unit_end);
        barrier_wait(sync, threads);
    }
    /* An odd step count leaves the final state in the spare buffer: copy this thread's units back. */
    if (length % 2 == 1) {
        size_t j0 = unit_begin * RK_UNITS, j1 = unit_end * RK_UNITS < H ? unit_end * RK_UNITS : H;
        for (size_t b = 0; j1 > j0 && b < B; b++) memcpy(s->h + b * H + j0, s->h_spare + b * H + j0, (j1 - j0) * sizeof(float));
    }
}

typedef struct {
    const rk_sequence *sequences;
    size_t count;
    barrier barriers[MAX_THREADS];
} sequences_job;

static void sequences_task(void *context, size_t thread, size_t threads) {
    sequences_job *job = context;
    if (threads < job->count) {
        /* Fewer threads than sequences: each thread runs whole sequences one after another. */
        for (size_t i = thread; i < job->count; i += threads) run_sequence(&job->sequences[i], 0, 1, &job->barriers[i]);
        return;
    }
    /* Sequence i gets threads i, i + count, i + 2·count, …; the leftover threads sit out. */
    size_t group = threads / job->count, i = thread % job->count, rank = thread / job->count;
    if (rank >= group) return;
    run_sequence(&job->sequences[i], rank, group, &job->barriers[i]);
}

void rk_run_sequences(const rk_sequence *sequences, size_t count) {
    for (size_t first = 0; first < count; first += MAX_THREADS) {
        sequences_job job = {.sequences = sequences + first, .count = count - first < MAX_THREADS ? count - first : MAX_THREADS};
        for (size_t i = 0; i < MAX_THREADS; i++) {
            atomic_init(&job.barriers[i].arrived, 0);
            atomic_init(&job.barriers[i].generation, 0);
            atomic_init(&job.barriers[i].sleepers, 0);
        }
        const rk_sequence *s = &job.sequences[0];
        size_t step_work = s->batch * gate_count(s->cell) * s->hidden * s->hidden;
        size_t per_sequence = step_work >= MIN_PARALLEL_STEP_WORK ? MAX_THREADS : 1;
        parallel(sequences_task, &job, per_sequence * job.count);
    }
}
