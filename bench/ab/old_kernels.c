/* An older commit's kernels (OLD, a directory holding its packed.c and pool.c) in one object, whose
   every public name run.sh then prefixes `old_` (objcopy --redefine-syms, from the object's own
   symbol table: a list kept here by hand missed the functions added after it), so they link beside
   the working tree's into sequences_ab. pool.c asks for _GNU_SOURCE (sched_getcpu, CPU sets), which
   must come before packed.c's headers. */
#define _GNU_SOURCE
#define RK_STRINGIFY(x) #x
#define RK_OLD_FILE(dir, file) RK_STRINGIFY(dir/file)
#include RK_OLD_FILE(OLD, packed.c)
#include RK_OLD_FILE(OLD, pool.c)
