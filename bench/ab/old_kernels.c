/* An older commit's kernels (OLD, a directory holding its packed.c and pool.c) with every public name
   prefixed `old_`, so they link beside the working tree's into sequences_ab. pool.c asks for
   _GNU_SOURCE (sched_getcpu, CPU sets), which must come before packed.c's headers. */
#define _GNU_SOURCE
#define rk_gemm_packed_size old_rk_gemm_packed_size
#define rk_gemm_pack old_rk_gemm_pack
#define rk_gate_columns old_rk_gate_columns
#define rk_input_packed_size old_rk_input_packed_size
#define rk_input_pack old_rk_input_pack
#define rk_input_bias_pack old_rk_input_bias_pack
#define rk_step_projects_input old_rk_step_projects_input
#define rk_step_runs_as_product old_rk_step_runs_as_product
#define rk_gemm_panels old_rk_gemm_panels
#define rk_gemm_packed old_rk_gemm_packed
#define rk_gemm_packed_parallel old_rk_gemm_packed_parallel
#define rk_recurrent_packed_size old_rk_recurrent_packed_size
#define rk_recurrent_pack old_rk_recurrent_pack
#define rk_recurrent_pack_half old_rk_recurrent_pack_half
#define rk_recurrent_step old_rk_recurrent_step
#define rk_step_partial_size old_rk_step_partial_size
#define rk_step_unit_group old_rk_step_unit_group
#define rk_step_wide_tile_rows old_rk_step_wide_tile_rows
#define rk_run_sequences old_rk_run_sequences
#define rk_kernels_name old_rk_kernels_name
#define rk_bf16_row_size old_rk_bf16_row_size
#define rk_bf16_round_rows old_rk_bf16_round_rows
#define rk_gates_packed_size_bf16 old_rk_gates_packed_size_bf16
#define rk_gates_pack_bf16 old_rk_gates_pack_bf16
#define rk_cell_gates old_rk_cell_gates
#define rk_step_round_state old_rk_step_round_state
#define rk_step_prepare_rows old_rk_step_prepare_rows
#define RK_STRINGIFY(x) #x
#define RK_OLD_FILE(dir, file) RK_STRINGIFY(dir/file)
#include RK_OLD_FILE(OLD, packed.c)
#include RK_OLD_FILE(OLD, pool.c)
