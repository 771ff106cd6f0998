// The worker pool and the recurrent sequence runner (recur_kernels.h).
//
// One process-wide pool of (cores − 1) threads that sleep on a futex when idle. A caller that finds
// the pool free borrows it for one job and works on it as thread 0; a caller that finds it busy
// runs the job alone. Work inside a job is claimed, never assigned: whichever threads turn up
// (a worker may be descheduled on a busy machine, or never arrive) share it, and the caller alone
// finishes whatever nobody claimed. So nobody waits for a thread that is not running, concurrent
// callers and nested calls cannot deadlock, and results do not depend on who computed what.
//
// A recurrent sequence with enough rows and W_hh small enough to stay in every core's cache (or
// larger, when a band's steps are matrix products that reuse each weight over its rows) is split
// into bands of rows, one per thread: rows are independent, so each thread runs its band's input
// projection and whole time loop with no barrier at all (as ONNX Runtime's LSTM does for batches),
// and a slow core delays only its own band. Otherwise each step is split by hidden-unit chunks,
// since every band would stream all of W_hh from memory each step: each thread first claims the
// chunks of its own share (so its slice of W_hh stays warm in its own cache, as in DeepCPU, USENIX
// ATC 2018), then steals what is left of the others' shares, then waits (spinning, then on a futex)
// until the step's last chunk is done. A bidirectional layer's directions are owned by different threads
// while their W_hh fit the L3 together or their steps have many rows, and otherwise one after the other.
#define _GNU_SOURCE
#include "recur_kernels.h"
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#if defined(__linux__)
#include <linux/futex.h>
#include <sched.h>
#include <sys/syscall.h>
#endif

/* Per-step products below this many multiply-adds run on one thread: waiting for the step's other
   chunks would cost more. Such a sequence still takes the pool for what needs no barrier per step, when
   there is at least MIN_PARALLEL_WORK multiply-adds of it (sequence_threads): its input projection
   (computed beside the steps, below), bands of its rows. */
enum { MIN_PARALLEL_STEP_WORK = 1 << 15, MIN_PARALLEL_WORK = 1 << 18 };
/* The input projection of a sequence whose steps run on one thread is computed beside the steps in
   blocks of PROJECTION_BLOCK_MIN_STEPS steps or more, of one full tile of the product's rows or more
   (rk_gemm_tile_rows), and at most MAX_PROJECTION_BLOCKS of them. Every thread claims the first unclaimed
   block; the thread running the steps runs a block's steps as soon as the block is done and, while the
   block it needs next is another thread's still, computes the next unclaimed one. So a worker slow to
   come costs nothing but the blocks it would have taken, and the steps wait only for the last blocks.
   (The whole projection on both cores first and then the steps was up to 1.45 times slower from a
   sleeping worker: the caller waited for the chunk a late worker had just claimed.) Until 2026-12-07
   helpers took blocks from the far end, and the steps of every block they computed ran after the two
   ends met, on one thread; blocks were 12 steps, and a short block leaves less of the steps after the
   projection's end. Both changes, measured on the Zen 1 VM (bench/ab, same bits, passes back to back;
   T = 100): GRU-64 I = 512 B = 1 0.906, RNN-128 I = 256 B = 1 0.941, LSTM-48 I = 200 B = 2 T = 50 0.904,
   GRU-40 I = 200 B = 3 0.821, LSTM-32 I = 64 B = 1 T = 256 0.976; from the front alone with blocks of 12,
   0.89–1.01 on such shapes, and blocks of 4 or 6 steps on top of it 0.92–1.00 of that. */
enum { PROJECTION_BLOCK_MIN_STEPS = 4, MAX_PROJECTION_BLOCKS = 64 };
/* Steps of up to PIPELINED_STEP_MAX_WORK multiply-adds also run on one thread beside their projection
   (above), rather than split between the threads after it, when the projection has at least
   PIPELINED_PROJECTION_SHARE times the steps' multiply-adds and W_hh fits one core's L2: the split's
   barrier and exchange of h_prev cost such steps about as much as their multiply-adds, and the
   projection then takes both cores until its last blocks. bench/ab on the Zen 1 VM (512 KiB of L2 a
   core; same bits, passes back to back, T = 100), beside the projection against split after it, with the
   blocks above: LSTM-76 I = 652 B = 3 (a random draw's, 1.06 behind ONNX Runtime) 0.917 (A/A beside it
   1.011), LSTM-150 I = 600 B = 2 0.878–0.910 (once 0.434: the split steps in a slow mode, 6.6 ms against
   3.1), RNN-256 I = 800 B = 2 0.895, GRU-128 I = 384 B = 4 0.924 (1.045 at another minute, where A/A runs of
   GRU-128 B = 4 take 1.033–1.042 in this harness). The bounds, from the same comparison
   with blocks of 12 steps: with 3–4 times the steps' work in the projection LSTM-128 I = 512 B = 3 0.967,
   LSTM-160 I = 480 B = 2 0.947, LSTM-64 I = 256 B = 8 0.983, RNN-256 I = 768 B = 1 0.952, GRU-128 I = 400
   B = 4 0.996; with twice mixed or slower (GRU-128 I = 256 B = 4 1.122, LSTM-128 I = 256 B = 1 1.017, but
   LSTM-76 I = 200 B = 3 0.815); with as much slower (GRU-128 I = 128 B = 2 1.379); with W_hh past the L2
   mixed or slower (LSTM-200 I = 600 B = 1 0.955, I = 400 1.074, GRU-256 I = 768 B = 1 1.033, LSTM-250
   I = 750 B = 1 1.060); with larger steps slower (LSTM-256 I = 768 B = 2 1.075, I = 1024 B = 1 1.047,
   RNN-512 I = 1000 B = 2 1.017). When the split steps run at their fastest the gain is smaller: random4's
   shape 1.01–1.03 with blocks of 12 beside A/A runs of 0.98–1.005, 0.98 with blocks of 6. */
enum { PIPELINED_STEP_MAX_WORK = 1 << 18, PIPELINED_PROJECTION_SHARE = 3 };
/* A sequence runs in bands of rows when every owning thread gets at least BAND_MIN_ROWS rows (fewer
   for small steps in wide tiles, below) and W_hh fits one core's L2 (core_cache()), or, when a band's steps run as
   matrix products (rk_step_runs_as_product), W_hh of up to BAND_PRODUCT_CACHE_SHARES times that: a
   product's tiles reuse each weight over the band's rows, so streaming all of W_hh from L3 every step
   costs a band little, and a band has no barrier per step (a core slowed by another tenant delays only
   its own rows). Measured, bench/ab, same bits: on a Zen 3 VM with 512 KiB of L2, bands with W_hh in
   L2 15% faster (256 KiB), no faster at 1 MiB, slower at 4 MiB on fused row groups; on a Zen 4 VM with
   1 MiB of L2, bands of 16 rows with 1 MiB of W_hh 0.86 (LSTM-256 B = 32), and of product steps
   GRU-384 B = 16 0.77–0.87, LSTM-1024 B = 64 0.93–0.94, RNN-1024 B = 32 0.94, LSTM-512 and GRU-512
   B = 64 0.95–1.00, where bands of fused row groups were slower (RNN-1024 B = 16 1.14–1.25) and so
   was W_hh larger than L3 (LSTM-2048 B = 32, 64 MiB: 1.09). Up to 8 times the L2, not 16, from
   2026-12-05 (a random draw had LSTM-1011 I = 243 B = 64 T = 10 at 1.06 of ONNX Runtime): with 16 MiB
   of W_hh, each band streaming all of it and its W_ih every step, split steps were faster (bench/ab,
   same bits: LSTM-1011 B = 64 T = 10 0.95–0.98 back to back and 0.91 from asleep, LSTM-1024 B = 64 0.96
   with I = 243 and 0.98 with I = 1024, B = 32 0.97, LSTM-1008 B = 32 T = 12 0.97; GRU-1011 and at
   12 MiB GRU-1024 B = 64 level), where at 4–8 MiB bands stay ahead or level (split steps: LSTM-724
   B = 64 1.02–1.05, GRU-512 B = 64 1.04–1.05, LSTM-512 B = 64 0.99–1.03, LSTM-724 B = 32 0.98–0.99).
   From 4 rows a band (8 until 2026-12-05), measured on the Zen 4 VM against split steps (bench/ab,
   passes back to back, same bits): RNN-256 B = 8 0.91–0.92,
   B = 12 0.88–0.90, LSTM-128 B = 8 0.93–0.96, LSTM-204 I = 530 B = 8 0.97–0.98,
   LSTM-256 B = 8 T = 200 0.985–0.99, B = 10 0.88–1.00, B = 12 0.99–1.05, B = 9 1.01–1.02, LSTM-64
   I = 64 B = 12 0.85–0.86, GRU-128 B = 10 0.67–0.74, GRU-200 B = 12 0.91, GRU-256 B = 8 0.97. The
   largest gains came in the spells when the two vCPUs sit in different core complexes and every
   step's barrier and exchange of h_prev cost most (GRU-128 B = 10, LSTM-256 B = 8 T = 200 0.875 in
   one). On the Zen 3 VM bands of 4–6 rows had been slower at these sizes (RNN-256
   B = 8 1.13, LSTM-100 B = 12 1.11, GRU-128 B = 10 1.04; 2026-12-03). Streaming W_hh from L3 takes
   bands of STREAMING_BAND_MIN_ROWS rows: bands of 4 rows of product steps were level or slower than
   split steps there (LSTM-384 B = 8 1.004–1.012, LSTM-478 I = 333 B = 8 1.001–1.028, LSTM-512 B = 8
   0.999–1.043, RNN-1024 B = 8 1.004–1.006). Nor do an rnn's bands stream W_hh where the CPU completes two
   multiply-adds of 16 floats a cycle (rk_wide_multiply_adds): on the Intel Xeon VM (2 MiB of L2 a core;
   bench/ab, same bits) split steps against bands of product steps took RNN-1024 B = 16 0.71–0.75, B = 32
   0.92–0.94, B = 64 0.95, RNN-768 I = 1500 B = 16 0.69–0.76, B = 32 0.96, RNN-512 I = 1500 B = 16 0.72 and
   RNN-1024 I = 2500 B = 16 0.92–0.94, where lstm bands kept ahead (LSTM-512 I = 1500 B = 16 bands 0.95 of
   split steps; GRU-512 1.03–1.06); with W_hh in the L2 bands stay ahead (RNN-600 B = 24 0.83 of
   split steps). The L2's size when the system does not tell: FALLBACK_CORE_CACHE_BYTES. */
enum { BAND_MIN_ROWS = 4, STREAMING_BAND_MIN_ROWS = 8, BAND_PRODUCT_CACHE_SHARES = 8, FALLBACK_CORE_CACHE_BYTES = 512 * 1024 };
/* Where the CPU's multiply-adds are not wide (rk_wide_multiply_adds: fewer than two of 16 floats a cycle), bands
   of BAND_MIN_ROWS rows or more whose steps are not streaming products take W_hh of up to
   NARROW_BAND_CACHE_SHARES times the L2: what misses the L2 each step comes from L3 fast enough for such a
   core's multiply-adds, and a band has no barrier per step. bench/ab on the Zen 1 VM (512 KiB of L2 a
   core), passes back to back, same bits, bands against split steps, T = 100, I = H unless said (A/A runs
   beside six of them at 0.992–1.005): LSTM-195 B = 8 0.92–0.96 (I = 583 0.952–0.956, I = 16 0.933),
   LSTM-208 B = 8 0.965–0.991, LSTM-216 0.942–0.959, LSTM-224 0.966–0.999, B = 12 0.994, LSTM-240 B = 10
   0.971–0.975, LSTM-256 B = 8 (1 MiB) 0.965–0.968 (once 1.04), B = 10 0.993, B = 12 0.995, GRU-230 B = 8
   0.932–0.958, GRU-240 B = 12 0.955, GRU-256 B = 8 0.985–0.996, RNN-400 B = 8 0.942–0.961, RNN-448 1.000,
   RNN-512 (1 MiB) 0.975–0.998; at up to 4 times the L2 level (LSTM-300 B = 8 0.989, B = 12 0.988,
   LSTM-350 B = 8 1.017, GRU-350 1.013, RNN-600 0.986). Bands of 2–3 rows were mixed, against A/A runs:
   LSTM-195 B = 4 0.943 against 0.994, LSTM-256 B = 6 0.989 against 0.974, GRU-256 B = 6 1.003 against
   1.023, B = 4 level. (This harness's A/A runs are not always level: RNN-400 B = 4 1.07, RNN-512 B = 4
   1.05, however the newer side is compiled, for a reason not found.) Zen 3 and Zen 4, whose multiply-adds
   are not wide either, take the limit unmeasured. */
enum { NARROW_BAND_CACHE_SHARES = 2 };
/* Bands of fewer rows than BAND_MIN_ROWS, down to WIDE_TILE_BAND_MIN_ROWS, when a step is small (at most
   SMALL_STEP_WORK multiply-adds of h_prev · W_hhᵀ per owning thread) and every band's rows fit one wide
   tile (rk_step_wide_tile_rows: AVX-512's lstm up to 6 rows, each weight read once for all of them).
   The split's barrier at the end of every step (a microsecond or so between two cores, more when one is
   slowed) is then a large part of the step. On the Zen 3 VM small steps took bands of 4 rows before
   larger ones did (bench/ab, passes back to back, same bits, beside A/A runs of 0.92–1.03): LSTM-64
   B = 8 0.79–0.90, B = 15 0.93, GRU-80 B = 8 0.84, RNN-160 B = 8 0.86, LSTM-90 B = 8 0.89; bands of 2–3
   rows were slower there (LSTM-100 B = 5 1.08–1.12). On the Zen 4 VM, whose two vCPUs sit on cores of
   one core complex at times (a ping-pong between them 60–200 ns a round trip) and of two at others
   (300–600 ns), a split step's barrier and its exchange of h_prev cost little in the first and doubled
   the time of small LSTMs in the second, slower than one thread; bands exchange nothing. Measured
   through the C API (a switch read at each call, blocks of 20 ms alternating, each block classed by a
   ping-pong measured just before it; bands of 2–3 rows against split steps, medians of the block
   ratios): LSTM-100 (I = 37) B = 5 1.00–1.04 with the vCPUs close and 0.69 apart, LSTM-64 B = 4 0.84
   and 0.61, LSTM-100 B = 7 0.89 and 0.63, LSTM-100 with I = 200 B = 6 0.88, LSTM-128 B = 4 1.02; where
   short rows have no wide tile they were slower with the vCPUs close (GRU-128 B = 5 1.12, RNN-128 B = 5
   1.14; GRU-100 B = 6 0.93). Steps too small to split, which ran on one thread beside their
   projection, take such bands too (bench/ab, passes back to back: LSTM-32 B = 4 0.92, LSTM-48 B = 6
   0.75). */
enum { SMALL_STEP_WORK = 1 << 17, WIDE_TILE_BAND_MIN_ROWS = 2 };
/* Bands of HELD_BAND_MIN_ROWS rows, when W_hh takes less than a quarter of the L2 (weights_fill_l2_quarter;
   with 2 MiB, an lstm of up to 178 units, a gru of 208, an rnn of 356): an lstm's in wide tiles whatever
   its step, any cell's where the CPU completes two multiply-adds of 16 floats a cycle
   (rk_wide_multiply_adds). Each band reads all of W_hh every step where a split step reads half, but
   from its own L2, with no barrier and no exchange of h_prev. Measured on the Intel Xeon VM (2 MiB of L2
   a core; a switch in one process, passes back to back, same bits, T = 50, I = H unless said; bands
   against split steps): LSTM-150 B = 6 0.89 (I = 64 0.87, I = 880 0.93), B = 7 0.87–0.92, LSTM-158
   I = 880 B = 6 0.95 (a random draw's, 1.03 behind PyTorch), LSTM-170 B = 6 0.90–0.96, B = 7 0.86–0.98,
   LSTM-176 B = 7 0.91, LSTM-128 B = 6 0.91–0.97, B = 7 0.89–0.95 (T = 20 0.90, T = 200 0.89); GRU-64
   B = 6–7 0.78 (I = 880 0.85–0.87), GRU-128 0.88–0.91, GRU-150 0.85–0.92, GRU-180 0.90–0.94, GRU-204
   0.87–0.91; RNN-64 B = 6 0.56 (I = 880 0.87), B = 7 0.46 (0.80), RNN-128 0.49–0.76, RNN-200 B = 7 0.58,
   RNN-256 B = 6 0.96–1.00, B = 7 0.82–0.92, relu RNN-64 and RNN-128 0.46–0.88, relu RNN-256 0.73–0.94,
   RNN-300 I = 880 B = 6 0.90. Bands of 2 rows were level or slower (LSTM-170 and LSTM-181 B = 4
   1.01–1.02, B = 5 0.98–1.03). Past the quarter, an lstm's bands of 3 rows still gained a little up to
   200 units (LSTM-181 B = 6 0.90–0.93, LSTM-200 B = 6 0.92–0.99) and not from half the L2 (LSTM-256
   B = 6 0.98–1.00, B = 4 1.08–1.16, LSTM-320 B = 6 1.03–1.08, LSTM-360 B = 6 1.14–1.21). With the AVX2
   kernels on the same CPU a gru's and an rnn's were mixed (GRU-150 B = 6 1.06, GRU-200 B = 7 1.00,
   RNN-256 B = 6 0.88, RNN-300 B = 7 1.08), so other CPUs keep BAND_MIN_ROWS for them. */
enum { HELD_BAND_MIN_ROWS = 3 };
/* An lstm's bands down to WIDE_TILE_BAND_MIN_ROWS rows whatever its step, while W_hh fits the L2, where
   the variant's wide tile holds fewer than HELD_BAND_MIN_ROWS rows and the CPU's multiply-adds are not
   wide (AVX2's 2-row wide tile): a band of 3 rows still reads each weight once a step, in a tile of its
   own height whose 6 sums keep a Zen 1 core at 38 GFLOP/s of its 39 (a tile's loop alone, weights from
   L2), and the split's barrier and exchange of h_prev every step cost more than reading all of W_hh from
   the core's own L2. Measured on the Zen 1 VM (AMD EPYC family 23 model 1, 512 KiB of L2 a core; a
   switch read at each call, through the Python binding, passes of the same model back to back, medians
   of 20 after half a second; bands against split steps): LSTM-100 I = 37 B = 5 0.76–0.81 with the
   vCPUs apart and 0.98 close (split steps there 1.05–1.18 ms and 0.82), LSTM-90 I = 64 B = 5 0.79–0.84,
   LSTM-64 I = 32 B = 6 0.92, LSTM-100 B = 6 0.89–0.90, LSTM-90 B = 7 0.83–0.88, LSTM-64 B = 7
   0.83–0.86, LSTM-128 B = 5 0.89–0.92, LSTM-150 B = 4 0.77, B = 6 0.82–0.90 (W_hh 70% of the L2);
   LSTM-180 B = 5, whose W_hh passes the L2 and so keeps split steps, 0.98. On the Zen 3 VM (2026-12-03,
   before each band's gx had a block of its own, band_gx) bands of 2–3 rows had measured LSTM-100 B = 5
   1.08–1.12. */
/* A band's thread computes its rows' input projection itself, ahead of its steps or in them. In them it
   pays from BAND_PROJECTING_MIN_ROWS rows, fewer than a step over all the rows needs
   (rk_step_projects_input, which weighs a projection that the threads share ahead), when the input
   part and the recurrent part are one product over [x | h_prev] (not gru, whose n gate keeps them
   apart) and x is no wider than h_prev. Measured (a switch read at each call, blocks of 21 calls
   alternating through the C API, 30–40 blocks, Zen 3 VM; medians of the block ratios): LSTM-64 I = 32
   B = 8 (bands of 4) 0.86–0.89, two layers of it 0.90–0.91, B = 12 with I = 64 (bands of 6) 0.91,
   RNN-128 B = 8 0.87–0.88, LSTM-90 B = 8 1.00; with every band of 4 rows or more projecting, slower for
   gru (GRU-100 B = 8 1.02, GRU-60 B = 10 in bands of 5 1.06) and with I = 2·H (LSTM-50 I = 100 B = 14
   1.03), which the rule leaves as they were (1.00 each). From 2026-12-05 to the product's tiles of
   every height (packed.c, gemm_last_rows) only bands whose product computed no rows for nothing
   projected in their steps: AVX-512's short tiles of 4 computed 8 rows for a band of 6, and such bands
   took 1.25 times split steps on the Zen 4 VM (LSTM-256 B = 12). With a tile of 6 rows they take 0.91
   of projecting ahead (bench/ab, same bits, with the tiles: LSTM-256 B = 12 0.905–0.918, B = 14 0.91–0.93,
   B = 18 0.75–0.77, LSTM-64 I = 64 B = 12 0.94–0.96, RNN-256 B = 12 level); in AVX2's tiles on the
   same machine bands of 5 and 7 rows lost a little (LSTM-256 B = 9 1.04–1.06, B = 13 1.07, RNN-256
   B = 10 1.05; B = 10, 11, 12 and 14 0.92–0.97). */
enum { BAND_PROJECTING_MIN_ROWS = 4 };
/* When the rows do not divide evenly, the bands with a row more ("heavy") hand the input projection of
   their last steps to the other ("light") bands' threads, which compute it before their own steps: a
   band's thread has no other work to even out, so LSTM-100 B = 5 in bands of 2 and 3 rows kept the
   2-row thread idle for a quarter of the time. How many steps (handed_steps) evens out the threads'
   multiply-adds, with what moving a handed value between cores costs (HANDED_TRANSFER), the heavy
   band's extra row counted as its steps' H and its projection's I per gate column: one more row in a
   step's tile costs its multiply-adds, and the tile's overheads are paid once per band (one thread at
   LSTM-100 I = 37: 0.205 ms for 2 rows, 0.273 for 3, 21 µs of it each row's projection). bench/ab,
   same bits, passes back to back, against the bands' own projections: LSTM-100 I = 37 B = 5 0.92
   (handing 37 of 60 steps; 25–35 steps 0.82–0.88 in a calmer minute, 45 steps 0.99, all 60 1.37, with
   the gate math counted as 32 more inputs (45 steps) 0.96–0.98), LSTM-64 I = 32 B = 5 0.83, LSTM-100
   I = 200 B = 7 0.99, GRU-100 B = 5 0.99, GRU-128 B = 9 level. */
/* A thread's chunks run in turn forward and backward (odd steps from its last chunk) when its share of the
   weights a step reads is at most this many times its core's L2: the weights it read last are then the first
   it needs again, still in L2, where in the same order every step a share a little larger than L2 evicts
   each line just before its next use. Measured (bench/ab, batch 1, same bits): shares of 1× L2 0.84–0.94
   (LSTM-256 on two cores), 0.97 (RNN-512), 1.7× 0.96 (GRU-384), 2× 0.88 (LSTM-256 on one core), 0.91
   (RNN-512), 0.96 (GRU-300); at 4× (LSTM-512) no gain; batched steps, bound by their multiply-adds,
   unchanged (LSTM-256 at B = 8 and 32: 1.00). So do they when the weights a step reads come to more than the
   L3 holds or ZIGZAG_STREAMED_BYTES, whichever is less, and then a chunk backward goes in pieces of
   ZIGZAG_PIECE_BYTES, from its last: the step streams its weights from memory, and what the caches still
   hold of the last step's is the last few MiB it read. In pieces of 2 MiB it gained nothing (LSTM-2048
   B = 4, 0.99–1.00), in pieces of 256 KiB, against the old rule (through the C API, a switch read at each
   call, blocks alternating, medians of the block ratios; Zen 4 VM): LSTM-2048 B = 4 (two layers) 0.95–0.96
   and 0.91–0.92 in the runs before, B = 1 0.98, B = 32 level to 0.96, GRU-2048 B = 4 0.99; at 4–16 MiB, with
   the caches holding more, it gained nothing at batch 1 (LSTM-512, LSTM-1024, GRU-512, GRU-1024: 0.98–1.05).
   Until 2026-12-07 the bound was 32 MiB, that VM's L3, also where the L3 is smaller. On the Zen 1 VM (one L3
   of 8 MiB; bench/ab, same bits, passes back to back), from the L3's size: LSTM-1024 B = 1 T = 25 0.73,
   RNN-2048 B = 1 0.875, LSTM-724 B = 1 0.95, LSTM-1024 B = 8 0.975, GRU-1024 B = 1 0.98–0.99 and B = 4 0.98;
   batches bound by their multiply-adds level (LSTM-1024 B = 64 1.004, GRU-1024 B = 32 0.994). */
enum { ZIGZAG_MAX_CACHE_SHARES = 2, ZIGZAG_STREAMED_BYTES = 32 << 20, ZIGZAG_PIECE_BYTES = 256 << 10 };
/* Chunks per step and per owning thread: the unit of stealing. A step over several rows takes fewer,
   larger chunks, whose per-chunk set-up (tiles, row groups, claims) is then spread over more units
   (bench/ab on the Zen 4 VM, same bits: LSTM-256 B = 8 T = 200 0.954–0.976, B = 4 0.966, bidirectional B = 8
   0.978); at batch 1, 4 a thread were no faster (LSTM-256 1.007, LSTM-512 0.977, GRU-512 1.024). A lone row
   whose W_hh fits the owners' L2s takes HELD_LONE_ROW_CHUNKS_PER_THREAD: each chunk of a lone row is a few
   hundred cycles of multiply-adds and ends in a chain of latencies (the last sums, their activations) that
   the next chunk's set-up does not hide. On the Zen 4 VM (2026-12-07, T = 100, I = H), 2 a thread against 8,
   through recur bench (a switch read at each call, processes alternating): LSTM-256 0.931, GRU-256 0.955,
   with half W_hh LSTM-256 0.913 and LSTM-512 0.980, with products in bfloat16 LSTM-256 0.887, GRU-256 0.926,
   GRU-512 0.888, LSTM-512 0.969; with W_hh from L3 level or slower (LSTM-360 0.997, LSTM-1024 0.991, LSTM-512
   1.024, in bfloat16 LSTM-1024 1.013). bench/ab (same bits, passes back to back): LSTM-256 0.959–0.983,
   bidirectional 0.971, LSTM-128 0.988, GRU-256 1.004–1.007, GRU-200 0.995, with half W_hh LSTM-256 0.875. */
enum { CHUNKS_PER_THREAD = 8, BATCHED_CHUNKS_PER_THREAD = 4, HELD_LONE_ROW_CHUNKS_PER_THREAD = 2,
       MAX_CHUNKS = RK_MAX_THREADS * CHUNKS_PER_THREAD };
/* How long a waiting thread spins before it sleeps: an idle worker long enough to catch the next
   call of a caller running passes back to back; a thread waiting for the rest of a step only as
   long as a chunk takes, since past that its peer is likely descheduled and needs the core. */
static const long IDLE_SPIN_NANOSECONDS = 200000, STEP_SPIN_NANOSECONDS = 50000;

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
static void wait_while_equal(_Atomic uint32_t *word, uint32_t value, _Atomic uint32_t *sleepers, long spin_nanoseconds) {
    long deadline = 0;
    for (unsigned spins = 0; atomic_load_explicit(word, memory_order_acquire) == value; spins++) {
        if ((spins & 63) != 63) {
            cpu_relax();
            continue;
        }
        long now = monotonic_ns();
        if (deadline == 0) deadline = now + spin_nanoseconds;
        if (now < deadline) continue;
        atomic_fetch_add(sleepers, 1);
        if (atomic_load(word) == value) futex_wait(word, value);
        atomic_fetch_sub(sleepers, 1);
    }
}

/* Wakes whoever sleeps on *word after a change to it; seq_cst pairs with the sleeper's
   increment-then-check in wait_while_equal. */
static void wake(_Atomic uint32_t *word, _Atomic uint32_t *sleepers) {
    if (atomic_load(sleepers) > 0) futex_wake_all(word);
}

/* ---- progress counters ---------------------------------------------------------------- */

/* Completed work items, and a 32-bit copy of "how many waits are over" for futex sleeping. */
typedef struct {
    _Atomic uint64_t done;
    _Atomic uint32_t word, sleepers;
} progress;

/* Milestones (first, first + every, first + 2·every, …) at or below `done`. */
static uint64_t milestones(uint64_t done, uint64_t every, uint64_t first) {
    return done < first ? 0 : 1 + (done - first) / every;
}

/* Adds `count` done items; wakes the waiters when that passes a milestone (the end of a phase). */
static void progress_add(progress *p, uint64_t count, uint64_t milestone_every, uint64_t first_milestone) {
    if (count == 0) return;
    uint64_t before = atomic_fetch_add(&p->done, count);
    if (milestones(before + count, milestone_every, first_milestone) > milestones(before, milestone_every, first_milestone))
        atomic_fetch_add(&p->word, 1), wake(&p->word, &p->sleepers);
}

/* Waits until `target` items are done. */
static void progress_wait(progress *p, uint64_t target) {
    while (atomic_load(&p->done) < target) {
        uint32_t word = atomic_load(&p->word);
        if (atomic_load(&p->done) >= target) break;
        wait_while_equal(&p->word, word, &p->sleepers, STEP_SPIN_NANOSECONDS);
    }
}

/* ---- pool --------------------------------------------------------------------------------- */

typedef void (*task_fn)(void *context, size_t thread, size_t threads);

/* The job word: generation (8 bits) | closed (1 bit) | threads inside the job (23 bits). */
enum { JOB_CLOSED = 1u << 23, JOB_INSIDE = JOB_CLOSED - 1 };

static struct {
    pthread_once_t once;
    size_t workers;
    atomic_flag busy;
    task_fn task;
    void *context;
    size_t threads;
    _Atomic uint32_t generation, generation_sleepers;
    _Atomic uint32_t job, job_sleepers;
    _Atomic long last_contention; /* monotonic_ns of the last job that found the pool taken by another caller */
#if defined(__linux__)
    pthread_t threads_started[RK_MAX_THREADS]; /* [1 ... workers] */
    cpu_set_t cpus;                            /* the CPUs the pool's starter could run on (thread_budget) */
    int kept_off;                              /* the CPU the workers are kept off, -1 for none yet */
#endif
} pool = {.once = PTHREAD_ONCE_INIT, .busy = ATOMIC_FLAG_INIT};

/* Enters the job of `generation` if it is still open; false when it closed or a newer one began. */
static int enter_job(uint32_t generation) {
    uint32_t job = atomic_load(&pool.job);
    for (;;) {
        if (job >> 24 != (generation & 0xff) || (job & JOB_CLOSED)) return 0;
        if (atomic_compare_exchange_weak(&pool.job, &job, job + 1)) return 1;
    }
}

static void *worker_main(void *argument) {
    size_t index = (size_t)(uintptr_t)argument;
    uint32_t seen = 0;
    for (;;) {
        wait_while_equal(&pool.generation, seen, &pool.generation_sleepers, IDLE_SPIN_NANOSECONDS);
        seen = atomic_load(&pool.generation);
        if (!enter_job(seen)) continue;
        if (index < pool.threads) pool.task(pool.context, index, pool.threads);
        uint32_t left = atomic_fetch_sub(&pool.job, 1) - 1;
        if ((left & JOB_INSIDE) == 0 && (left & JOB_CLOSED)) wake(&pool.job, &pool.job_sleepers);
    }
    return NULL;
}

/* Threads in all: the CPUs the thread starting the pool may run on, which its workers inherit (online
   cores where that is unknown), or RECUR_THREADS when set to a smaller positive number. A process
   confined to fewer CPUs than the machine has (taskset, a container's cpuset) gets no more threads
   than it has CPUs. */
static long thread_budget(void) {
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
#if defined(__linux__)
    if (CPU_COUNT(&pool.cpus) > 0) cores = CPU_COUNT(&pool.cpus);
#endif
    const char *setting = getenv("RECUR_THREADS");
    long wanted = setting ? strtol(setting, NULL, 10) : 0;
    return wanted > 0 && wanted < cores ? wanted : cores;
}

/* cpu0's cache of `level` (2 or 3) in bytes, read once a level (racing first callers store the same
   answer): the size sysfs gives for its cache index `level` (Linux lists L1's data and instruction caches
   as indexes 0 and 1), which on a Zen 1 EPYC is its core complex's 8 MiB of L3 where sysconf reports the
   package's 64 MiB; sysconf's where sysfs does not say; 0 where neither does. */
static size_t cpu0_cache_bytes(int level) {
    static _Atomic long known[4] = {-1, -1, -1, -1};
    if (level < 2 || level > 3) return 0;
    long bytes = atomic_load_explicit(&known[level], memory_order_relaxed);
    if (bytes >= 0) return (size_t)bytes;
    bytes = 0;
    char path[64];
    snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/size", level);
    FILE *file = fopen(path, "r");
    if (file) {
        long size = 0;
        char unit = 0;
        if (fscanf(file, "%ld%c", &size, &unit) >= 1 && size > 0)
            bytes = unit == 'K' ? size << 10 : unit == 'M' ? size << 20 : size;
        fclose(file);
    }
#if defined(_SC_LEVEL2_CACHE_SIZE) && defined(_SC_LEVEL3_CACHE_SIZE)
    if (bytes <= 0) bytes = sysconf(level == 2 ? _SC_LEVEL2_CACHE_SIZE : _SC_LEVEL3_CACHE_SIZE);
#endif
    bytes = bytes > 0 ? bytes : 0;
    atomic_store_explicit(&known[level], bytes, memory_order_relaxed);
    return (size_t)bytes;
}

/* One core's L2 in bytes. */
static size_t core_cache(void) {
    size_t bytes = cpu0_cache_bytes(2);
    return bytes > 0 ? bytes : FALLBACK_CORE_CACHE_BYTES;
}

static void pool_start(void) {
#if defined(__linux__)
    if (sched_getaffinity(0, sizeof pool.cpus, &pool.cpus) != 0) CPU_ZERO(&pool.cpus);
    pool.kept_off = -1;
#endif
    long cores = thread_budget();
    size_t wanted = cores > RK_MAX_THREADS ? RK_MAX_THREADS - 1 : cores > 1 ? (size_t)cores - 1 : 0;
    pthread_attr_t attributes;
    pthread_attr_init(&attributes);
    pthread_attr_setstacksize(&attributes, 256 * 1024);
    for (size_t i = 1; i <= wanted; i++) {
        pthread_t thread;
        if (pthread_create(&thread, &attributes, worker_main, (void *)(uintptr_t)i) != 0) break;
        pthread_detach(thread);
#if defined(__linux__)
        pool.threads_started[i] = thread;
#endif
        pool.workers = i;
    }
    pthread_attr_destroy(&attributes);
}

/* Keeps the workers off the CPU the caller runs on. A scheduler may wake a sleeping worker on its
   waker's CPU rather than on an idle one (Linux's wake-affine placement when it judges the other CPU
   busy or its vCPU preempted; the development VM's kernel also packs tasks onto few vCPUs,
   sched_vcpu_pack). The worker then waits behind the caller, each sleeps while the other runs, every
   wake-up places them together again, and a job meant for two cores runs on one, one thread at a
   time: perf sched timehist showed the caller and the worker alternating on CPU 1 for whole blocks
   of passes while CPU 0 idled, LSTM-64 B = 8 taking 1.0–1.4 ms a pass against 0.69 on one thread and
   0.42 on two. So when the caller is on another CPU than at the last job, the workers' affinity
   becomes the pool's CPUs less the caller's (the scheduler still places them among those); one
   sched_getcpu a job, which glibc reads from its rseq area, and the system call only when the caller
   moved. The affinity is advice: a call the system refuses (a cpuset changed since) leaves the
   workers where the scheduler puts them. Called with the pool held. */
static void keep_workers_off_caller(void) {
#if defined(__linux__)
    int cpu = sched_getcpu();
    if (cpu < 0 || cpu == pool.kept_off || cpu >= CPU_SETSIZE) return;
    cpu_set_t elsewhere = pool.cpus;
    CPU_CLR(cpu, &elsewhere);
    if (CPU_COUNT(&elsewhere) == 0) return;
    for (size_t i = 1; i <= pool.workers; i++)
        pthread_setaffinity_np(pool.threads_started[i], sizeof elsewhere, &elsewhere);
    pool.kept_off = cpu;
#endif
}

/* Runs task(context, i, n) on the caller as i = 0 and on whichever workers 1 ..< n join before the
   caller's own call returns; n ≤ wanted, and 1 when the pool is busy. The task must claim its work
   so that the caller's call alone completes it. Returns once every joined worker has left. */
static void parallel(task_fn task, void *context, size_t wanted) {
    if (wanted > 1) pthread_once(&pool.once, pool_start);
    size_t threads = wanted < pool.workers + 1 ? wanted : pool.workers + 1;
    if (threads > 1 && atomic_flag_test_and_set_explicit(&pool.busy, memory_order_acquire)) {
        atomic_store_explicit(&pool.last_contention, monotonic_ns(), memory_order_relaxed);
        threads = 1;
    }
    if (threads <= 1) {
        task(context, 0, 1);
        return;
    }
    pool.task = task;
    pool.context = context;
    pool.threads = threads;
    keep_workers_off_caller();
    uint32_t generation = atomic_load(&pool.generation) + 1;
    atomic_store(&pool.job, (generation & 0xff) << 24);
    atomic_store(&pool.generation, generation);
    wake(&pool.generation, &pool.generation_sleepers);
    task(context, 0, threads);
    uint32_t job = atomic_fetch_or(&pool.job, JOB_CLOSED) | JOB_CLOSED;
    while (job & JOB_INSIDE) {
        wait_while_equal(&pool.job, job, &pool.job_sleepers, STEP_SPIN_NANOSECONDS);
        job = atomic_load(&pool.job);
    }
    atomic_flag_clear_explicit(&pool.busy, memory_order_release);
}

static size_t share(size_t total, size_t part, size_t parts) { return total * part / parts; }

/* ---- matrix product over the pool -------------------------------------------------------- */

typedef struct {
    rk_product product;
    size_t chunks;
    _Atomic size_t next;
    progress progress;
} gemm_job;

/* Products with at least this many rows split into bands of rows, fewer into bands of column panels.
   A band of rows keeps its rows in its core's L2 while all the weights stream past; with few rows
   the weights are the bigger part, and each core streams only its own panels. */
enum { ROW_SPLIT_MIN_ROWS = 512, ROW_BAND_MIN = 96 };

/* How many parts a product of M rows and N columns is cut into, at most `most`, and a multiple of
   `threads` when there are more parts than threads, so that threads that all turn up finish together
   (720 rows in 7 bands ran 4 bands on one core and 3 on the other). */
static size_t gemm_parts(size_t M, size_t N, size_t threads, size_t most) {
    size_t bands = M >= ROW_SPLIT_MIN_ROWS ? M / ROW_BAND_MIN : rk_gemm_panels(N);
    size_t parts = bands < most ? bands : most;
    if (parts > threads) parts -= parts % threads;
    return parts > 0 ? parts : 1;
}

/* Part `part` of `parts` of the product. */
static void gemm_part(const rk_product *p, size_t part, size_t parts) {
    size_t panels = rk_gemm_panels(p->N);
    if (p->M >= ROW_SPLIT_MIN_ROWS) rk_gemm_packed(p, share(p->M, part, parts), share(p->M, part + 1, parts), 0, panels);
    else rk_gemm_packed(p, 0, p->M, share(panels, part, parts), share(panels, part + 1, parts));
}

static void gemm_task(void *context, size_t thread, size_t threads) {
    gemm_job *j = context;
    (void)thread, (void)threads;
    for (size_t chunk; (chunk = atomic_fetch_add(&j->next, 1)) < j->chunks;) {
        gemm_part(&j->product, chunk, j->chunks);
        progress_add(&j->progress, 1, j->chunks, j->chunks);
    }
    progress_wait(&j->progress, j->chunks);
}

void rk_gemm_packed_parallel(size_t M, size_t N, size_t K, const float *X, size_t ldx, const float *P,
                             const float *bias, float *Y, size_t ldy) {
    /* Small products are not worth a wake-up. */
    size_t chunks = 1;
    if (M * N * K >= (1u << 18)) {
        pthread_once(&pool.once, pool_start);
        chunks = gemm_parts(M, N, pool.workers + 1, MAX_CHUNKS);
    }
    gemm_job job = {{M, N, K, X, ldx, P, bias, Y, ldy, SIZE_MAX, 0}, chunks};
    parallel(gemm_task, &job, job.chunks);
}

/* ---- sequences ---------------------------------------------------------------------------- */

/* The claims on one owner's share of a step's chunks (count of them): at step s, moving the counter
   from s·count + i to s·count + i + 1 claims the share's i-th chunk. One counter per share, not one
   per chunk: a peer that looks for work reads one line of the owner's per step, not one per chunk,
   each of which the owner's next claim then had to take back across cores (bench/ab on the Zen 4 VM,
   same bits: LSTM-256 B = 1 0.966–0.986, LSTM-512 B = 1 1.003, LSTM-256 B = 8 0.984). */
typedef struct {
    _Alignas(64) _Atomic uint64_t next;
} share_claims;

/* The index in its share of the chunk claimed for step `step`, or SIZE_MAX when all `count` are taken
   (a counter past the step's end belongs to a later step, which has not begun for this caller). */
static size_t claim_in_share(share_claims *claims, uint64_t step, uint64_t count) {
    uint64_t next = atomic_load_explicit(&claims->next, memory_order_relaxed);
    while (next < (step + 1) * count)
        if (atomic_compare_exchange_weak(&claims->next, &next, next + 1)) return (size_t)(next - step * count);
    return SIZE_MAX;
}

/* How the sequence holds W_hh. */
static rk_weights weight_format(const rk_sequence *s) {
    return s->recurrent_bf16_weights ? RK_WEIGHTS_BFLOAT16 : s->recurrent_half_weights ? RK_WEIGHTS_FLOAT16 : RK_WEIGHTS_FLOAT32;
}

/* A step's multiply-adds of h_prev · W_hhᵀ over all the rows: what MIN_PARALLEL_STEP_WORK and
   SMALL_STEP_WORK measure. */
static size_t step_work(const rk_sequence *s) { return s->batch * rk_cell_gates(s->cell) * s->hidden * s->hidden; }

/* Multiply-adds of the input projection x · W_ihᵀ over all the steps. */
static size_t projection_work(const rk_sequence *s) {
    return s->steps * s->batch * rk_cell_gates(s->cell) * s->hidden * s->input_size;
}

static size_t recurrent_weight_bytes(const rk_sequence *s) {
    return rk_recurrent_packed_size(rk_cell_gates(s->cell), s->hidden) * (weight_format(s) == RK_WEIGHTS_FLOAT32 ? 4 : 2);
}

/* Whether steps big enough to split run on one thread beside their input projection instead
   (PIPELINED_STEP_MAX_WORK). */
static int steps_beside_projection(const rk_sequence *s) {
    return step_work(s) < PIPELINED_STEP_MAX_WORK && projection_work(s) >= PIPELINED_PROJECTION_SHARE * s->steps * step_work(s) &&
           recurrent_weight_bytes(s) <= core_cache();
}

/* The bytes of W_ih that steps computing their own input part read every step (only float32 steps do). */
static size_t input_weight_bytes(const rk_sequence *s) {
    return rk_input_packed_size(rk_cell_gates(s->cell), s->hidden, s->input_size) * sizeof(float);
}

/* Whether the steps over `rows` of the sequence's rows compute their own input part, so that those
   rows' input projection is not computed ahead, while `at_once` sequences like it run (a bidirectional
   layer's two directions). Such steps read W_ih with W_hh every step, and so do the other sequences'; all
   of those weights must fit in 1 / STEP_STREAM_L3_SHARE of the L3, or the steps wait for them from memory,
   where a projection ahead reads W_ih once for all the steps. Measured on a Zen 1 VM (AMD EPYC family 23
   model 1, 512 KiB of L2 a core, one L3 of 8 MiB; bench/ab, same bits, T = 100), projecting ahead against
   in the steps: bidirectional LSTM-256 I = 512 B = 8 (3 MiB of weights a direction, two at once) 0.932,
   LSTM-512 I = 256 B = 12 T = 60 (6 MiB) 0.972; LSTM-256 I = 256 B = 8 (2 MiB, one sequence over both
   threads) 1.038, so it still projects in its steps. With the 32 MiB L3 of the Zen 3 and Zen 4 VMs every
   shape that rk_step_projects_input chose there stays as measured there. */
enum { STEP_STREAM_L3_SHARE = 2 };
static int steps_project_input(const rk_sequence *s, size_t rows, size_t at_once) {
    size_t l3 = cpu0_cache_bytes(3), streamed = (input_weight_bytes(s) + recurrent_weight_bytes(s)) * at_once;
    return rk_step_projects_input(rk_cell_gates(s->cell), rows, s->input_size, s->hidden, weight_format(s), core_cache()) &&
           (l3 == 0 || streamed * STEP_STREAM_L3_SHARE <= l3);
}

/* Whether W_hh takes a quarter of a core's L2 or more (BAND_HELD_WEIGHT_SHARE): a band's steps then wait for
   weights that other data evicts from the L2 (band_waits_for_l2), and bands of few rows lose more to reading
   all of W_hh than the split's barrier costs (HELD_BAND_MIN_ROWS). */
enum { BAND_HELD_WEIGHT_SHARE = 4 };
static int weights_fill_l2_quarter(const rk_sequence *s) {
    return recurrent_weight_bytes(s) * BAND_HELD_WEIGHT_SHARE >= core_cache();
}

/* Whether the CPU completes two multiply-adds of 16 floats a cycle and the band's product steps would wait
   for W_ih streamed with W_hh from L2 every step (band_projects_input): a band of an lstm that fits a wide
   tile and whose step is not small, or a band of any cell whose W_hh takes a quarter of the L2 or more.
   The CPU is asked last: its first answer is timed (about 0.1 ms), and only these bands need it. */
static int band_waits_for_l2(const rk_sequence *s, size_t rows) {
    size_t G = rk_cell_gates(s->cell);
    int wide_tile_band = rows <= rk_step_wide_tile_rows(G) && rows * G * s->hidden * s->hidden > SMALL_STEP_WORK;
    return (wide_tile_band || weights_fill_l2_quarter(s)) && rk_wide_multiply_adds();
}

/* Whether a band's steps over `rows` rows compute their own input part (BAND_PROJECTING_MIN_ROWS). Asked
   with SIZE_MAX rows, rk_step_projects_input answers on everything but the rows: the weights' format,
   x's width, W_ih's size. Not where the CPU completes two multiply-adds of 16 floats a cycle
   (rk_wide_multiply_adds) and the band waits for its weights from L2 (band_waits_for_l2): projecting in its
   steps streams W_ih with W_hh every step, where the projection ahead reads W_ih once for all the steps in
   tall tiles and the steps read W_hh alone, which then stays in L2. Measured on an Intel Xeon VM (family 6
   model 207, 2 MiB of L2 a core; a switch in one process, passes back to back, same bits), projecting ahead
   against in the steps. Bands that fit a wide tile: LSTM-256 B = 8 T = 200 0.67, B = 12 0.84, LSTM-128
   B = 8 0.82, LSTM-200 I = 100 B = 8 0.85; small steps slower (LSTM-64 I = 32 B = 8 1.04, I = 64 B = 12
   1.06). Bands of 8 to 32 rows (2026-12-05, from 22:00 UTC; x = I = H, T = 100, unless said): LSTM-256
   B = 16 0.89 (I = 64 0.93, I = 128 0.97), B = 20 0.91, B = 24 0.89–0.97, B = 28 0.95, B = 32 0.98–0.99
   (I = 128 1.01–1.04), LSTM-320 B = 16 0.80, LSTM-384 B = 16 0.85, LSTM-512 T = 50 B = 16 0.80, B = 24
   0.89, B = 32 0.91, B = 64 0.94–0.99, GRU-256 B = 16 0.92–0.94, B = 24 0.95, B = 32 0.97, GRU-384 B = 16
   0.82–0.90 (I = 128 0.87), GRU-512 T = 50 B = 64 1.00; with W_hh of less than a quarter of the L2 level
   or slower (LSTM-128 B = 16 0.99–1.02, LSTM-90 B = 16 1.09, GRU-128 B = 24 1.00). An rnn's bands follow
   the same rule since its steps of 2 rows or more run as products on such a CPU (rk_step_runs_as_product);
   while bands of fewer than 16 rows stepped in fused row groups, projecting ahead had measured RNN-256
   B = 12 1.23, RNN-512 B = 8 1.03, B = 16 1.57. Now (2026-12-06, same bits; T = 100, I = H unless said):
   RNN-512 B = 8 0.63–0.77, B = 16 0.81–0.89, B = 32 0.95, I = 128 B = 16 0.94, T = 50 B = 64 0.99,
   RNN-400 B = 8 0.89, RNN-700 B = 8 0.61, B = 32 0.94, I = 128 B = 24 0.98, relu RNN-512 B = 8 0.76,
   RNN-600 B = 12 0.72; under the rule's quarter of the L2, RNN-300 B = 10 0.95 but RNN-256 B = 12 1.04. */
static int band_projects_input(const rk_sequence *s, size_t rows, size_t at_once) {
    int projects = steps_project_input(s, rows, at_once) ||
                   (rows >= BAND_PROJECTING_MIN_ROWS && s->cell != RK_CELL_GRU && s->input_size <= s->hidden &&
                    steps_project_input(s, SIZE_MAX, at_once));
    return projects && !band_waits_for_l2(s, rows);
}

/* One sequence's shared progress: bands of rows claimed whole, or the input projection's chunks
   (none when the steps project their own input) and then every step's chunks. */
typedef struct {
    const rk_sequence *s;
    size_t columns;             /* gate columns of gx and the packed weights */
    size_t partial_floats;      /* one thread's step workspace */
    int projects_input;         /* steps over all the rows compute their own input part */
    size_t length;              /* steps that run: the longest sequence */
    size_t owners;              /* threads the work is nominally dealt to */
    size_t at_once;             /* sequences run beside it, itself included (steps_project_input) */
    int steps_alone;            /* steps too small to split (MIN_PARALLEL_STEP_WORK): one thread runs them all */
    _Atomic int steps_taken;    /* when steps_alone: set by the thread that runs them */
    size_t step_owners;         /* threads each step is split between: owners, or 1 when steps_alone */
    size_t block_steps, blocks; /* blocks > 0: the projection in blocks of steps beside the steps */
    _Atomic size_t next_block;  /* the first block not yet claimed */
    _Atomic uint8_t block_done[MAX_PROJECTION_BLOCKS];
    _Atomic uint32_t blocks_word, blocks_sleepers; /* counts finished blocks, for waiting on one */
    rk_product projection;      /* x [B·T, I] · W_ihᵀ + b into gx, time-major: row b·T + t at gx[t][b] */
    size_t bands;               /* > 1: the rows in this many bands, each run whole by one thread */
    _Atomic size_t next_band;   /* claimed in order: the light bands (fewer rows) before the heavy ones */
    size_t light_bands;         /* bands of B / bands rows; the others ("heavy") have one more */
    size_t handed_steps;        /* > 0: the projection of every heavy band's last this many steps is the light bands' */
    _Atomic uint32_t handed_word, handed_sleepers; /* counts the light bands that have computed their part */
    size_t projection_chunks, step_chunks;
    size_t projection_phases;   /* 1: the projection split as the step chunks are, a phase before the first step */
    int zigzag;                 /* odd steps run each thread's chunks backward */
    size_t piece_units;         /* a chunk backward goes in pieces of this many unit blocks, its last piece first */
    size_t units, unit_group, groups; /* H's unit blocks; chunks are whole groups of unit_group of them */
    _Atomic size_t next_projection_chunk;
    progress progress;          /* projection chunks, then step chunks */
    share_claims claims[RK_MAX_THREADS]; /* one per owner's share of the step chunks */
} sequence_run;

/* The longest of rows row_begin ..< row_end. */
static size_t longest(const rk_sequence *s, size_t row_begin, size_t row_end) {
    if (!s->lengths) return s->steps;
    size_t length = 0;
    for (size_t b = row_begin; b < row_end; b++) length = s->lengths[b] > length ? s->lengths[b] : length;
    return length;
}

/* The bands of rows a sequence that `owners` threads run, beside `at_once - 1` others, is split into
   (BAND_MIN_ROWS): one per owner, or 1 for none. */
static size_t band_count(const rk_sequence *s, size_t owners, size_t at_once) {
    size_t B = s->batch, H = s->hidden, G = rk_cell_gates(s->cell), band_rows = B / owners;
    int band_products = rk_step_runs_as_product(G, band_rows, H, band_projects_input(s, band_rows, at_once), weight_format(s));
    int streams = band_products && band_rows >= STREAMING_BAND_MIN_ROWS && !(G == 1 && rk_wide_multiply_adds());
    size_t cache_shares = streams ? BAND_PRODUCT_CACHE_SHARES
                          : band_rows >= BAND_MIN_ROWS && !rk_wide_multiply_adds() ? NARROW_BAND_CACHE_SHARES
                                                                                   : 1;
    size_t band_weight_limit = cache_shares * core_cache();
    size_t widest_band = (B + owners - 1) / owners, wide_tile_rows = rk_step_wide_tile_rows(G);
    int small_step = step_work(s) <= owners * SMALL_STEP_WORK, wide_tiles = !band_products && widest_band <= wide_tile_rows;
    int short_wide_tiles = wide_tile_rows > 0 && wide_tile_rows < HELD_BAND_MIN_ROWS && !rk_wide_multiply_adds();
    size_t band_min_rows = (wide_tiles && small_step) || short_wide_tiles ? WIDE_TILE_BAND_MIN_ROWS
                           : weights_fill_l2_quarter(s) ? BAND_MIN_ROWS
                           : wide_tiles || rk_wide_multiply_adds() ? HELD_BAND_MIN_ROWS
                                                                 : BAND_MIN_ROWS;
    return owners > 1 && B >= owners * band_min_rows && recurrent_weight_bytes(s) <= band_weight_limit ? owners : 1;
}

/* What a handed value of gx costs the light band's thread beyond its multiply-adds, counted as that many
   more: the value is written on one core and read on the other, where a band's own gx never leaves its
   core. LSTM-100 I = 37 B = 5, the bands' times through a C loop: 53–55 µs for the 3-row band's 37 handed
   times (1.19 ns a value) against 42 for the 2-row band's own 60 (0.88 ns a value), so the light band
   ended 22 µs after the heavy one. That is 13 multiply-adds a value on the light band's side; the heavy
   band reads the values from the other core too, and 24 measured better than 16 or 32 (a noisy minute).
   bench/ab, same bits, passes back to back, against the count without it (A/A runs 0.984–1.010):
   LSTM-100 I = 37 B = 5 0.950, 0.965, 1.001 (27 of 60 steps handed, not 37), LSTM-64 I = 32 B = 5
   0.895, 0.919, B = 7 0.925, GRU-100 B = 5 0.962, 0.986, LSTM-100 I = 200 B = 7 0.953, 0.982; GRU-128
   B = 9 and RNN-128 B = 5 level (1.009). */
enum { HANDED_TRANSFER = 24 };

/* Steps whose input projection each heavy band hands to the light bands (above), when the sequence runs
   in `bands` bands. Per row and step a band's thread does S = H and, for the projection, P = I
   multiply-adds per gate column, and a light band's thread P + X for a handed one (X = HANDED_TRANSFER).
   With r rows in a light band, `heavy` bands of r + 1 and `light` of r, and n steps handed: a heavy
   band's thread does (r + 1)·T·(S + P) − (r + 1)·n·P, a light band's
   r·T·(S + P) + (heavy / light)·(r + 1)·n·(P + X); even when n = T·(S + P)·light / ((r + 1)·(P·bands + X·heavy)). */
static size_t handed_steps(const rk_sequence *s, size_t bands, size_t at_once) {
    size_t B = s->batch, T = s->steps, heavy = B % bands, rows = B / bands;
    if (heavy == 0 || s->input_size == 0 || band_projects_input(s, rows + 1, at_once)) return 0;
    size_t step = s->hidden, projection = s->input_size, light = bands - heavy;
    size_t even = T * (step + projection) * light / ((rows + 1) * (projection * bands + heavy * HANDED_TRANSFER));
    return even < T ? even : T;
}

/* The first row of band `band`: the light bands' (fewer rows) first, so that they are claimed first. */
static size_t band_first_row(const sequence_run *r, size_t band) {
    size_t rows = r->s->batch / r->bands, light = r->light_bands;
    return band <= light ? band * rows : light * rows + (band - light) * (rows + 1);
}

static void sequence_init(sequence_run *r, const rk_sequence *s, size_t owners, size_t at_once) {
    size_t B = s->batch, T = s->steps, H = s->hidden, columns = rk_gate_columns(rk_cell_gates(s->cell), H);
    r->s = s;
    r->columns = columns;
    r->partial_floats = rk_step_partial_size(rk_cell_gates(s->cell), B, H, weight_format(s));
    r->projects_input = steps_project_input(s, B, at_once);
    r->at_once = at_once;
    r->length = longest(s, 0, B);
    r->owners = owners;
    r->bands = band_count(s, owners, at_once);
    int pipelines = owners > 1 && r->bands == 1 && !r->projects_input && weight_format(s) != RK_WEIGHTS_BFLOAT16 && r->length > 0;
    r->steps_alone = step_work(s) < MIN_PARALLEL_STEP_WORK || (pipelines && steps_beside_projection(s));
    r->step_owners = r->steps_alone ? 1 : owners;
    atomic_init(&r->steps_taken, 0);
    atomic_init(&r->next_band, 0);
    r->light_bands = r->bands - B % r->bands;
    r->handed_steps = handed_steps(s, r->bands, at_once);
    atomic_init(&r->handed_word, 0);
    atomic_init(&r->handed_sleepers, 0);
    size_t most = owners * CHUNKS_PER_THREAD;
    r->projection = (rk_product){B * T, columns, s->input_size, s->x, s->ldx, s->input_weights, s->input_bias,
                                 s->gx, B * columns, T, columns};
    if (weight_format(s) == RK_WEIGHTS_BFLOAT16) {
        /* Rounded here, on the calling thread: a product split by column panels reads every row. */
        size_t row_size = rk_bf16_row_size(s->input_size);
        rk_bf16_round_rows(B * T, s->input_size, s->x, s->ldx, s->x_bf16, row_size);
        r->projection.X16 = s->x_bf16, r->projection.ldx = row_size, r->projection.P16 = s->input_bf16_weights;
    }
    r->projection_chunks = r->projects_input ? 0 : gemm_parts(B * T, columns, owners, most);
    r->blocks = 0;
    if (r->steps_alone && pipelines) {
        size_t fewest = (r->length + MAX_PROJECTION_BLOCKS - 1) / MAX_PROJECTION_BLOCKS;
        size_t full_tile = (rk_gemm_tile_rows() + B - 1) / B;
        size_t least = full_tile > PROJECTION_BLOCK_MIN_STEPS ? full_tile : PROJECTION_BLOCK_MIN_STEPS;
        r->block_steps = fewest > least ? fewest : least;
        r->blocks = (r->length + r->block_steps - 1) / r->block_steps;
        r->projection_chunks = 0;
        atomic_init(&r->next_block, 0);
        for (size_t b = 0; b < r->blocks; b++) atomic_init(&r->block_done[b], 0);
        atomic_init(&r->blocks_word, 0);
        atomic_init(&r->blocks_sleepers, 0);
    }
    r->units = (H + RK_UNITS - 1) / RK_UNITS;
    r->unit_group = rk_step_unit_group(rk_cell_gates(s->cell), B);
    r->groups = (r->units + r->unit_group - 1) / r->unit_group;
    size_t lone_row_chunks = recurrent_weight_bytes(s) <= r->step_owners * core_cache() ? HELD_LONE_ROW_CHUNKS_PER_THREAD
                                                                                         : CHUNKS_PER_THREAD;
    size_t step_most = r->step_owners * (B == 1 ? lone_row_chunks : BATCHED_CHUNKS_PER_THREAD);
    r->step_chunks = r->groups < step_most ? r->groups : step_most;
    /* A projection split by column panels (fewer than ROW_SPLIT_MIN_ROWS rows) is split as the steps
       are, each owner first computing gx for the units whose steps it owns: gx then stays in that
       core's cache, where chunks claimed from one counter left half of each step's gx to be fetched
       from the other core, and the projection's writes to take lines from it. Measured through the C
       API (a switch read at each call, blocks alternating; Zen 4 VM): LSTM-100 (I = 37) B = 5 0.94–0.97
       with the vCPUs in two core complexes and 0.97 in one, RNN-256 B = 1 0.97, LSTM-300 B = 3 0.98,
       LSTM-256 and GRU-512 B = 1 0.99. */
    r->projection_phases = r->projection_chunks > 0 && r->bands == 1 && r->step_owners > 1 && B * T < ROW_SPLIT_MIN_ROWS;
    if (r->projection_phases) r->projection_chunks = 0;
    size_t step_weight_bytes = recurrent_weight_bytes(s) + (r->projects_input ? input_weight_bytes(s) : 0);
    size_t group_bytes = step_weight_bytes / (r->groups ? r->groups : 1);
    size_t l3 = cpu0_cache_bytes(3);
    int streamed = step_weight_bytes > (l3 > 0 && l3 < ZIGZAG_STREAMED_BYTES ? l3 : (size_t)ZIGZAG_STREAMED_BYTES);
    r->zigzag = streamed || step_weight_bytes <= ZIGZAG_MAX_CACHE_SHARES * core_cache() * r->step_owners;
    r->piece_units = !streamed ? r->units
                     : group_bytes > 0 && group_bytes < ZIGZAG_PIECE_BYTES ? ZIGZAG_PIECE_BYTES / group_bytes * r->unit_group
                                                        : r->unit_group;
    atomic_init(&r->next_projection_chunk, 0);
    atomic_init(&r->progress.done, 0);
    atomic_init(&r->progress.word, 0);
    atomic_init(&r->progress.sleepers, 0);
    for (size_t o = 0; o < r->step_owners; o++) atomic_init(&r->claims[o].next, 0);
}

/* Row row_begin's gx at time t, in the block of the band of `rows` rows from row_begin: each band's rows
   time-major in a block of their own, [T, rows, columns] from row row_begin·T (with one band, all of gx
   as [T, B, columns]). Two bands' rows side by side at every time, the hardware prefetcher of the core
   writing or reading one band's rows took lines of the other's from the other core: LSTM-100 (I = 37)
   B = 4 in two bands took 0.28–0.29 ms on two threads for minutes at a time, against 0.23–0.24 with
   blocks of their own and 0.19 for each band on a thread of its own in two processes at once. */
static float *band_gx(const sequence_run *r, size_t row_begin, size_t rows, size_t t) {
    return r->s->gx + (row_begin * r->s->steps + t * rows) * r->columns;
}

/* Step `step_index` of `length` (the longest of these rows) for rows row_begin ..< row_end, whose steps
   compute their own input part when `projects_input`, on `thread`'s partial sums. h and h_spare take
   turns as the state: after an odd number of steps the rows' state is in h_spare. Made once per step
   and thread, not per chunk: at batch 1 a thread runs 8 chunks a step of a few hundred nanoseconds. */
static rk_step step_of_rows(const sequence_run *r, size_t step_index, size_t length, size_t row_begin, size_t row_end,
                            int projects_input, size_t thread) {
    const rk_sequence *s = r->s;
    size_t T = s->steps, H = s->hidden, columns = r->columns;
    size_t t = s->reverse ? length - 1 - step_index : step_index;
    float *state = step_index % 2 == 0 ? s->h : s->h_spare, *next = step_index % 2 == 0 ? s->h_spare : s->h;
    return (rk_step){
        .cell = s->cell, .batch = row_end - row_begin, .hidden = H, .weights = s->recurrent_weights,
        .half_weights = s->recurrent_half_weights, .bf16_weights = s->recurrent_bf16_weights, .bias = s->recurrent_bias,
        .gx = band_gx(r, row_begin, row_end - row_begin, t), .ldgx = columns,
        .x = projects_input ? s->x + (row_begin * T + t) * s->ldx : NULL, .ldx = T * s->ldx,
        .input_size = s->input_size, .input_weights = s->input_weights, .input_bias = s->input_bias,
        .h_prev = state + row_begin * H, .h_next = next + row_begin * H,
        .c = s->c ? s->c + row_begin * H : NULL, .y = s->y + (row_begin * T + t) * s->ldy, .ldy = T * s->ldy,
        .lengths = s->lengths ? s->lengths + row_begin : NULL, .t = t,
        .partial = s->partial + thread * r->partial_floats,
    };
}

/* The first unit block of chunk `chunk` of a step (r->step_chunks: the units' end). */
static size_t chunk_first_unit(const sequence_run *r, size_t chunk) {
    size_t first = share(r->groups, chunk, r->step_chunks) * r->unit_group;
    return first < r->units ? first : r->units;
}

/* Chunk `chunk` of a step over all the rows, whose rows are prepared; `backward`, in pieces from its last. */
static void step_chunk(const sequence_run *r, const rk_step *step, size_t chunk, int backward) {
    size_t begin = chunk_first_unit(r, chunk), end = chunk_first_unit(r, chunk + 1);
    if (!backward) {
        rk_recurrent_step(step, begin, end);
        return;
    }
    for (size_t piece = (end - begin + r->piece_units - 1) / r->piece_units; piece-- > 0;) {
        size_t piece_begin = begin + piece * r->piece_units;
        rk_recurrent_step(step, piece_begin, end - piece_begin < r->piece_units ? end : piece_begin + r->piece_units);
    }
}

/* The columns of the input projection that chunk `chunk` of every step reads: its units' gates, in
   whole panels (a panel two chunks share goes to the first). */
static void project_chunk(const sequence_run *r, size_t chunk) {
    size_t unit_columns = rk_cell_gates(r->s->cell) * RK_UNITS;
    size_t first = rk_gemm_panels(chunk_first_unit(r, chunk) * unit_columns);
    size_t end = chunk + 1 == r->step_chunks ? rk_gemm_panels(r->columns) : rk_gemm_panels(chunk_first_unit(r, chunk + 1) * unit_columns);
    rk_gemm_packed(&r->projection, 0, r->projection.M, first, end);
}

/* The times of a heavy band's steps whose input projection the light bands compute (handed_steps): the
   last steps run, the last times or, reversed, the first. */
static size_t handed_first_time(const sequence_run *r) { return r->s->reverse ? 0 : r->s->steps - r->handed_steps; }

/* The input projection writing band `band`'s part of gx, in the band's block (band_gx). */
static rk_product band_projection(const sequence_run *r, size_t band) {
    size_t first = band_first_row(r, band), rows = band_first_row(r, band + 1) - first;
    rk_product p = r->projection;
    /* Row m = b·T + t of the product at Y + b·ldy_group + t·ldy, ldy_group being columns: row first at
       time t is band_gx(first, t). */
    p.ldy = rows * r->columns;
    p.Y = band_gx(r, first, rows, 0) - first * p.ldy_group;
    return p;
}

/* Band `band`'s rows of the input projection at times t0 ..< t1 (rows b·T + t of the product). */
static void project_times(const sequence_run *r, size_t band, size_t t0, size_t t1) {
    size_t T = r->s->steps, panels = rk_gemm_panels(r->projection.N);
    size_t row_begin = band_first_row(r, band), row_end = band_first_row(r, band + 1);
    rk_product p = band_projection(r, band);
    if (t0 == 0 && t1 == T) {
        rk_gemm_packed(&p, row_begin * T, row_end * T, 0, panels);
        return;
    }
    for (size_t b = row_begin; b < row_end; b++) rk_gemm_packed(&p, b * T + t0, b * T + t1, 0, panels);
}

/* A light band's part of every heavy band's handed projection: the handed times, split between the light
   bands. Counted in handed_word when done. */
static void project_handed(sequence_run *r, size_t band) {
    size_t light = r->light_bands, n = r->handed_steps, first = handed_first_time(r);
    size_t t0 = first + share(n, band, light), t1 = first + share(n, band + 1, light);
    for (size_t heavy = light; heavy < r->bands; heavy++) project_times(r, heavy, t0, t1);
    atomic_fetch_add(&r->handed_word, 1);
    wake(&r->handed_word, &r->handed_sleepers);
}

/* Returns once every light band has computed its part of the handed projection. */
static void await_handed(sequence_run *r) {
    for (uint32_t done; (done = atomic_load(&r->handed_word)) < r->light_bands;)
        wait_while_equal(&r->handed_word, done, &r->handed_sleepers, STEP_SPIN_NANOSECONDS);
}

/* Band `band` of the rows, whole: its rows of the input projection (rows b·T + t of the product are
   contiguous for a band of b) unless its steps project their own, then its own time loop, up to its own
   longest row. With handed steps, a light band first computes its part of the heavy bands' projection,
   and a heavy band computes its own but for the handed times, and waits for those before it needs them. */
static void run_band(sequence_run *r, size_t band, size_t thread) {
    const rk_sequence *s = r->s;
    size_t T = s->steps, row_begin = band_first_row(r, band), row_end = band_first_row(r, band + 1);
    size_t n = r->handed_steps, first_handed = handed_first_time(r);
    int projects_input = band_projects_input(s, row_end - row_begin, r->at_once), heavy = n > 0 && band >= r->light_bands;
    if (n > 0 && !heavy) project_handed(r, band);
    /* A heavy band's own times: all but the handed ones, which are its last or, reversed, its first. */
    if (!projects_input) project_times(r, band, heavy && s->reverse ? n : 0, heavy && !s->reverse ? T - n : T);
    size_t length = longest(s, row_begin, row_end);
    int handed_ready = !heavy;
    for (size_t step_index = 0; step_index < length; step_index++) {
        rk_step step = step_of_rows(r, step_index, length, row_begin, row_end, projects_input, thread);
        if (!handed_ready && step.t >= first_handed && step.t < first_handed + n) await_handed(r), handed_ready = 1;
        rk_recurrent_step(&step, 0, r->units);
    }
    if (length % 2 == 1)
        memcpy(s->h + row_begin * s->hidden, s->h_spare + row_begin * s->hidden,
               (row_end - row_begin) * s->hidden * sizeof(float));
}

/* Block `block` of a pipelined projection: steps block·block_steps onwards, which are the times t0 ..< t1
   (counted back from the longest row's last step when reversed), one product per row. */
static void project_block(sequence_run *r, size_t block) {
    const rk_sequence *s = r->s;
    size_t first = block * r->block_steps;
    size_t end = first + r->block_steps < r->length ? first + r->block_steps : r->length;
    size_t t0 = s->reverse ? r->length - end : first, t1 = s->reverse ? r->length - first : end;
    project_times(r, 0, t0, t1);
    atomic_store_explicit(&r->block_done[block], 1, memory_order_release);
    atomic_fetch_add(&r->blocks_word, 1);
    wake(&r->blocks_word, &r->blocks_sleepers);
}

/* Claims the first unclaimed block, or returns SIZE_MAX when none is left. */
static size_t claim_block(sequence_run *r) {
    size_t block = atomic_fetch_add(&r->next_block, 1);
    return block < r->blocks ? block : SIZE_MAX;
}

/* Returns once block `block` of the projection is done, computing the first unclaimed blocks while it
   is not (block `block` itself when nobody has claimed it). */
static void await_block(sequence_run *r, size_t block) {
    while (!atomic_load_explicit(&r->block_done[block], memory_order_acquire)) {
        size_t unclaimed = claim_block(r);
        if (unclaimed != SIZE_MAX) {
            project_block(r, unclaimed);
            continue;
        }
        uint32_t word = atomic_load(&r->blocks_word);
        if (atomic_load_explicit(&r->block_done[block], memory_order_acquire)) return;
        wait_while_equal(&r->blocks_word, word, &r->blocks_sleepers, STEP_SPIN_NANOSECONDS);
    }
}

/* Every step of a steps_alone sequence on this thread, with its projection pipelined. */
static void run_steps_with_projection(sequence_run *r, size_t thread) {
    for (size_t step_index = 0; step_index < r->length; step_index++) {
        if (step_index % r->block_steps == 0) await_block(r, step_index / r->block_steps);
        rk_step step = step_of_rows(r, step_index, r->length, 0, r->s->batch, 0, thread);
        rk_recurrent_step(&step, 0, r->units);
    }
}

/* Works on the sequence as `thread` (owner `rank` of r->step_owners, or a helper when rank ≥ step_owners)
   until every step is done, or, when the steps run alone, until another thread has taken them. */
static void sequence_work(sequence_run *r, size_t thread, size_t rank) {
    if (r->bands > 1) {
        for (size_t band; (band = atomic_fetch_add(&r->next_band, 1)) < r->bands;) run_band(r, band, thread);
        return;
    }
    if (r->blocks > 0) {
        if (!atomic_exchange(&r->steps_taken, 1)) run_steps_with_projection(r, thread);
        else
            for (size_t block; (block = claim_block(r)) != SIZE_MAX;) project_block(r, block);
        return;
    }
    uint64_t projection = r->projection_chunks, chunks = r->step_chunks;
    for (size_t c; (c = atomic_fetch_add(&r->next_projection_chunk, 1)) < projection;) {
        gemm_part(&r->projection, c, projection);
        progress_add(&r->progress, 1, chunks, projection);
    }
    progress_wait(&r->progress, projection);
    if (r->steps_alone && atomic_exchange(&r->steps_taken, 1)) return;
    /* Phases: the projection when it is split as the steps are, then every step. Own share first,
       then the others' round the ring, each share's chunks in order; with zigzag, odd steps take every
       share's chunks from its last. */
    size_t first_share = rank < r->step_owners ? rank : 0, phases = r->projection_phases + r->length;
    uint64_t phase = (atomic_load(&r->progress.done) - projection) / chunks;
    for (; phase < phases; phase++) {
        /* Done chunks are counted once per phase, so the shared counter's line moves once per thread. The
           thread's first chunk of a step prepares the rows for all of its chunks: at batch 1 in bfloat16, a
           step of 16 chunks rounded h_prev 16 times. */
        uint64_t computed = 0;
        size_t step = phase - r->projection_phases;
        int backward = r->zigzag && step % 2 == 1;
        rk_step prepared = {0};
        for (size_t k = 0; k < r->step_owners; k++) {
            size_t o = (first_share + k) % r->step_owners, begin = share(chunks, o, r->step_owners);
            size_t count = share(chunks, o + 1, r->step_owners) - begin;
            for (size_t i; (i = claim_in_share(&r->claims[o], phase, count)) != SIZE_MAX; computed++) {
                if (phase < r->projection_phases) {
                    project_chunk(r, begin + i);
                    continue;
                }
                if (computed == 0) {
                    prepared = step_of_rows(r, step, r->length, 0, r->s->batch, r->projects_input, thread);
                    rk_step_prepare_rows(&prepared);
                    prepared.rows_prepared = 1;
                }
                step_chunk(r, &prepared, backward ? begin + count - 1 - i : begin + i, backward);
            }
        }
        progress_add(&r->progress, computed, chunks, projection);
        progress_wait(&r->progress, projection + (phase + 1) * chunks);
    }
}

/* An odd step count leaves the final state in the spare buffer (a band moved its own). */
static void sequence_finish(const sequence_run *r) {
    const rk_sequence *s = r->s;
    if (r->bands == 1 && r->length % 2 == 1) memcpy(s->h, s->h_spare, s->batch * s->hidden * sizeof(float));
}

typedef struct {
    sequence_run runs[RK_MAX_THREADS];
    rk_sequence widened[RK_MAX_THREADS]; /* a sequence whose half weights this run widens, as float32 */
    size_t count, per_sequence;
} sequences_job;

/* Thread i owns sequence i mod count (as owner i / count of its threads), then helps the others. */
static void sequences_task(void *context, size_t thread, size_t threads) {
    sequences_job *job = context;
    (void)threads;
    size_t first = thread % job->count, rank = thread / job->count;
    for (size_t i = 0; i < job->count; i++)
        sequence_work(&job->runs[(first + i) % job->count], thread, i == 0 ? rank : job->per_sequence);
}

/* Threads each of `count` sequences like `s` is dealt to (the pool's, or 1; with 1, `count` sequences still
   run on threads of their own). A lone sequence whose steps are too small to split has the pool's threads
   for its bands of rows or its input projection when that work comes to MIN_PARALLEL_WORK and the workers
   are awake (spinning after a job a moment ago), or, with them asleep, when it comes to WAKING_WORK or the
   caller has been running sequences back to back (`in_burst`). Waking a worker that sleeps costs the caller
   a futex call of 10 µs on the development VM (an interrupt to an idle vCPU) and the worker comes 20–40 µs
   later: passes of such sequences 0.5 ms apart took 1.12–1.40 times as long with it (bench/ab, same bits,
   beside A/A runs of 0.94–1.02), and lstm-48 B = 2 with I = 200, 7.7 million multiply-adds of projection,
   0.84–0.93. Nor does such a sequence take the pool while callers on other threads have been finding it
   taken (`contended`): the CPUs then have their work, and a worker kept awake would only spin beside it
   (recurd, 2 clients sending requests of LSTM-75 at B = 1 unbatched: 4–8% fewer requests a second with
   the burst alone). */
enum { WAKING_WORK = 1 << 22 };
static size_t sequence_threads(const rk_sequence *s, size_t count, int in_burst, int contended) {
    size_t shareable = SIZE_MAX; /* what a second thread could take: all of it when the steps are split */
    if (step_work(s) < MIN_PARALLEL_STEP_WORK) {
        if (count > 1) return 1;
        /* Its bands when it has them, else its input projection. Bands need WIDE_TILE_BAND_MIN_ROWS rows a
           thread or more (band_count): a sequence with too few rows for two threads' and too little
           projection is not worth starting the pool to count its threads. */
        size_t banded = s->batch >= 2 * WIDE_TILE_BAND_MIN_ROWS ? s->steps * step_work(s) + projection_work(s) : 0;
        if (banded < MIN_PARALLEL_WORK && projection_work(s) < MIN_PARALLEL_WORK) return 1;
        pthread_once(&pool.once, pool_start);
        shareable = band_count(s, pool.workers + 1, 1) > 1 ? banded : projection_work(s);
        if (shareable < MIN_PARALLEL_WORK) return 1;
    }
    pthread_once(&pool.once, pool_start);
    if (shareable < WAKING_WORK && (contended || (!in_burst && atomic_load(&pool.generation_sleepers) > 0))) return 1;
    return pool.workers + 1;
}

/* Runs of sequences that each start within IDLE_SPIN_NANOSECONDS of the last one's end form a burst, and
   once a burst has lasted BURST_NANOSECONDS small sequences wake sleeping workers (sequence_threads): a
   caller running passes back to back for that long will likely go on, and the workers, once woken, spin
   between its passes, so the wake is paid once for the burst. Sooner, a model of a few small layers called
   now and then would pay it in every pass for a worker that comes when its last layer is half done (lstm-75
   at batch 1, two layers, passes 0.5 ms apart: 1.02–1.05 waking at the second run of a burst; level
   with the 1 ms, 0.92–1.02). Measured back to back (same process, blocks of 20 passes alternating, the switch
   read at each call): lstm-75 (I = 145) B = 1 T = 50 0.83, two layers of it 0.94, GRU-90 B = 1 0.86,
   RNN-128 B = 1 0.90. Relaxed atomics: concurrent callers may race on them, costing at most a wake too many
   or too few. A job that found the pool taken makes callers `contended` for CONTENTION_NANOSECONDS: long
   against the burst, so that callers who no longer take the pool (and so no longer find it taken) wake
   it again only now and then. */
enum { BURST_NANOSECONDS = 1000000, CONTENTION_NANOSECONDS = 100000000 };
static _Atomic long burst_start, last_run_end;

/* How many sequences run beside each other, each on threads of its own (a bidirectional layer's two
   directions): all of them while their W_hh together fit in 1/BESIDE_L3_SHARES of the L3 or they have
   BESIDE_PAST_L3_MIN_ROWS rows, else one at a time on all the threads. Beside each other, two
   directions' steps read both W_hh every step and the L3 keeps little of either; one at a time, a step's weights are the L3's alone (or, past it, what
   the zigzag keeps of them, ZIGZAG_STREAMED_BYTES), at the cost of a split step's barrier, small against a
   step that reads that much. With many rows a step's product reads each weight once for all of them, so
   reading the weights from memory costs it little, and beside each other the directions have no barrier
   and no split.
   Measured on the Zen 1 VM (one L3 of 8 MiB; bench/ab, same bits, passes back to back), one at a time
   against beside each other, two directions each: LSTM-859 I = 979 B = 4 T = 50 (11.8 MiB of W_hh a
   direction; a random draw's, 1.16 behind ONNX Runtime) 0.925, with the zigzag from the L3's size 0.84
   (the zigzag alone 0.91), LSTM-600 B = 1 0.87–0.88, LSTM-1024 B = 1 0.74 (0.64 with the zigzag, which
   alone took 0.77), GRU-700 B = 8 0.93–0.95, RNN-1500 B = 16 0.95 with the zigzag; bound by their
   multiply-adds, level (LSTM-600 B = 32 1.000). Beside each other against one at a time (bench/ab as
   above, 2026-12-07): LSTM-673 I = 53 T = 6 (a random draw's, 1.04 behind ONNX Runtime) B = 128 0.97,
   B = 64 0.98, B = 32 1.02, B = 16 1.05; at B = 128 LSTM-600 0.99, LSTM-1024 0.99, GRU-700 0.995; at
   B = 64 RNN-1500 0.985, LSTM-600 1.005, LSTM-1024 1.00; at B = 32 LSTM-600 and GRU-700 1.00.
   From half the L3, not all of it (2026-12-07, evening): on the Zen 4 VM (32 MiB of L3, which the VM's
   neighbours share; bench/ab, same bits, passes back to back, T = 50 unless said, weights on huge pages
   as the engine keeps them) one at a time against beside each other with 20–28 MiB of W_hh in both
   directions took bidirectional GRU-972 I = 815 B = 16 T = 12 (a random draw's, 1.15 behind ONNX
   Runtime; 1.02 after in bench.py) 0.954, B = 4 0.950, LSTM-860 B = 1 0.847, LSTM-800 B = 4 0.984,
   LSTM-925 I = 651 B = 1 (1.07 behind) 0.995. On 4 KiB pages the gains looked larger (0.78–0.96; an
   A/A run 0.98–0.995), and with 11–12 MiB one at a time was slower (LSTM-600 B = 1 1.022, GRU-700 B = 8
   1.039). On the Zen 1 VM (8 MiB of L3) directions of 4–8 MiB together are not measured. */
enum { BESIDE_PAST_L3_MIN_ROWS = 64, BESIDE_L3_SHARES = 2 };
static size_t sequences_beside(const rk_sequence *sequences, size_t count) {
    size_t l3 = cpu0_cache_bytes(3), weights = 0, rows = SIZE_MAX;
    for (size_t i = 0; i < count; i++) {
        weights += recurrent_weight_bytes(&sequences[i]);
        rows = sequences[i].batch < rows ? sequences[i].batch : rows;
    }
    return l3 > 0 && weights > l3 / BESIDE_L3_SHARES && rows < BESIDE_PAST_L3_MIN_ROWS ? 1 : RK_MAX_THREADS;
}

/* The sequence to run: `s`, or, where its half weights are widened (rk_step_widens_half_weights), `copy`
   made a float32 sequence of them, widened by the caller: at the batches that widen (8 rows or more), the
   steps' multiply-adds with W_hh alone are T·B times the widening's conversions. */
static const rk_sequence *widened(const rk_sequence *s, rk_sequence *copy) {
    size_t G = rk_cell_gates(s->cell);
    if (!s->recurrent_half_weights || !s->recurrent_widened || !rk_step_widens_half_weights(G, s->batch, s->hidden)) return s;
    rk_widen_half(rk_recurrent_packed_size(G, s->hidden), s->recurrent_half_weights, s->recurrent_widened);
    *copy = *s;
    copy->recurrent_weights = s->recurrent_widened;
    copy->recurrent_half_weights = NULL;
    return copy;
}

void rk_run_sequences(const rk_sequence *sequences, size_t count) {
    long start = monotonic_ns();
    if (start - atomic_load_explicit(&last_run_end, memory_order_relaxed) > IDLE_SPIN_NANOSECONDS)
        atomic_store_explicit(&burst_start, start, memory_order_relaxed);
    int in_burst = start - atomic_load_explicit(&burst_start, memory_order_relaxed) >= BURST_NANOSECONDS;
    int contended = start - atomic_load_explicit(&pool.last_contention, memory_order_relaxed) < CONTENTION_NANOSECONDS;
    size_t beside = sequences_beside(sequences, count);
    for (size_t first = 0; first < count; first += beside) {
        sequences_job job;
        job.count = count - first < beside ? count - first : beside;
        const rk_sequence *s = &sequences[first];
        size_t threads = sequence_threads(s, job.count, in_burst, contended);
        job.per_sequence = threads > job.count ? threads / job.count : 1;
        for (size_t i = 0; i < job.count; i++)
            sequence_init(&job.runs[i], widened(&sequences[first + i], &job.widened[i]), job.per_sequence, job.count);
        parallel(sequences_task, &job, job.per_sequence * job.count);
        for (size_t i = 0; i < job.count; i++) sequence_finish(&job.runs[i]);
    }
    atomic_store_explicit(&last_run_end, monotonic_ns(), memory_order_relaxed);
}
