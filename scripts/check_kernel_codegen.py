#!/usr/bin/env python3
"""Checks the machine code of the matrix-product tiles (Sources/CRecurKernels/packed.c).

A variant the machine cannot run (AVX-512 on a CPU without it) is never timed there, so this reads
the assembly clang makes of every variant instead. Each variant's products must contain an inner
loop holding its whole tile in registers: `rows × streams` fused multiply-adds on registers of its
width, and no vector value stored to or loaded from the stack inside the loop; and every inner loop
of that shape in the function must be so. A tile that falls back to memory (as a variable-length
array does) runs several times slower, and only this notices.

Usage: scripts/check_kernel_codegen.py [CLANG]  (default: clang on PATH)
"""
import platform
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SOURCE = ROOT / "Sources" / "CRecurKernels" / "packed.c"
# Flags as Package.swift gives the target.
FLAGS = ["-O3", "-fno-math-errno", "-Wno-psabi", "-I", str(SOURCE.parent / "include")]

FMA = r"vfmadd\d+ps"
# (function, instruction, register width, multiply-adds in the tile): avx2 tiles are 6 rows × 16
# floats (12 ymm), avx512 ones 12 rows × 2 × 16 floats (24 zmm); a product's rows after its last whole
# tile go in one tile of their own height, 2 up to one less than the tall tile's rows (avx512: 2 to 11
# rows, 4 to 22 zmm). In bfloat16 the avx512 tiles take one VDPBF16PS per accumulator and k pair, or,
# computed without it, two multiply-adds in tiles of half the rows (6 rows for avx512, 3 for avx2's
# 16 floats in 2 ymm, and 2 up to one less). A step's rows left after its tall tiles go in one tile of
# their own height too; a gru's step tiles take 3 panels (two unit blocks'
# 6 gates), so avx512's hold 2 to 8 rows × 3 × 16 floats; an lstm's short tiles of 2 to 6 rows (avx2:
# 2 rows) take its pair of unit blocks at once, 4 panels, told from the other tiles of as many
# multiply-adds by their row count (one broadcast of x per row and k). A product's float32 tiles of
# rows after the tall ones take twice the panels where those fit the registers (short_tile_panels:
# avx512 2 to 6 rows × 4 × 16 floats, avx2 2 rows × 2 × 16 floats), the panels left over as before.
EXPECTED = [
    *[("gemm_avx2", FMA, "ymm", 2 * rows) for rows in range(2, 7)],
    *[("gemm_avx512", FMA, "zmm", 2 * rows) for rows in range(2, 13)],
    *[("gemm_avx512", FMA, "zmm", 4 * rows, rows) for rows in range(2, 7)],
    ("gemm_avx2", FMA, "ymm", 8, 2),
    *[("gemm_dpbf16", "vdpbf16ps", "zmm", 2 * rows) for rows in range(2, 13)],
    *[("gemm_bf16_avx512", FMA, "zmm", 4 * rows) for rows in range(2, 7)],
    *[("gemm_bf16_avx2", FMA, "ymm", 4 * rows) for rows in range(2, 4)],
    ("step_avx2", FMA, "ymm", 12),
    ("step_avx2", FMA, "ymm", 8),
    ("step_avx512", FMA, "zmm", 24),
    ("step_avx512", FMA, "zmm", 8),
    ("step_avx512", FMA, "zmm", 16),
    *[("step_avx2", FMA, "ymm", 2 * rows) for rows in range(2, 6)],
    *[("step_avx512", FMA, "zmm", 2 * rows) for rows in range(2, 12)],
    *[("step_avx512", FMA, "zmm", 3 * rows) for rows in range(2, 9)],
    *[("step_avx512", FMA, "zmm", 4 * rows, rows) for rows in range(2, 7)],
    ("step_avx2", FMA, "ymm", 8, 2),
]
BROADCAST = r"vbroadcastss"
# Inner loops known not to hold their tile in registers, so a new spill elsewhere still fails: (function,
# multiply-adds, broadcasts, an instruction in the loop). avx512's gru tile of 8 rows × 3 panels on half
# weights: clang loads the 8 rows' values and converts the 3 weight vectors before the 24 multiply-adds,
# 35 values for 32 registers, so 2 sums go through the stack. Found when this check began to look at
# every loop (2026-12-03); it was so at 65e280e already. Opt-in half weights, a gru at 8–15 rows, on
# AVX-512 only; not measured, there being no AVX-512 machine that day.
KNOWN_SPILLS = [("step_avx512", 24, 8, "vcvtph2ps")]



def function_body(assembly: str, name: str) -> list[str]:
    lines = assembly.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split("#")[0].strip() == f"{name}:")
    end = next(i for i in range(start, len(lines)) if lines[i].strip().startswith(f".size\t{name}"))
    return lines[start:end]


def inner_loops(body: list[str]):
    """The instructions of each innermost loop: from its header comment to its backward branch."""
    for i, line in enumerate(body):
        if "Inner Loop Header" not in line:
            continue
        loop = []
        for instruction in body[i + 1:]:
            loop.append(instruction)
            if re.match(r"\s+j(ne|b|l|a|ae|be|g|le)\s", instruction):
                break
        yield loop


def main() -> int:
    if platform.machine() not in ("x86_64", "AMD64"):
        print(f"no x86-64 variants to check on {platform.machine()}")
        return 0
    clang = sys.argv[1] if len(sys.argv) > 1 else "clang"
    with tempfile.TemporaryDirectory() as directory:
        output = Path(directory) / "packed.s"
        subprocess.run([clang, *FLAGS, "-S", str(SOURCE), "-o", str(output)], check=True)
        assembly = output.read_text()
    failures = []
    for name, instruction, register, fmas, *rows in EXPECTED:
        # Every loop of the tile's shape, not just one: the function inlines the tile once per cell
        # and path, and register allocation can fail in one copy alone (a step product's 6-row tile
        # kept a sum on the stack for the rnn only, and ran 1.9 times slower).
        tiles = spilled = known = 0
        for loop in inner_loops(function_body(assembly, name)):
            count = sum(1 for line in loop if re.search(rf"{instruction}\s.*%{register}\d+, %{register}\d+$", line.split("#")[0].strip()))
            broadcasts = sum(1 for line in loop if re.search(BROADCAST, line))
            if count != fmas or (rows and broadcasts != rows[0]):
                continue
            # The gate math's loops divide (tanh's quotient) and store each result: not tiles, though a
            # 16-float tanh's multiply-adds can number a tile's.
            if any(re.search(r"\bvdivps\b", line) for line in loop):
                continue
            # Vector stores (an accumulator in memory) or vector values from the stack; a scalar
            # reload (the loop bound) is harmless.
            code = [line.split("#")[0].strip() for line in loop]
            stack = any(
                "Spill" in line
                or ("%rsp" in text and re.search(r"%[xyz]mm", text))
                or (text.startswith("v") and re.search(r"%[xyz]mm\d+, [^,%]*\(", text))
                for line, text in zip(loop, code))
            if stack and any(name == f and fmas == m and broadcasts == n and any(marker in line for line in loop)
                             for f, m, n, marker in KNOWN_SPILLS):
                known += 1
                continue
            tiles += 1
            spilled += stack
        ok = tiles > 0 and spilled == 0
        over = f" over {rows[0]} rows" if rows else ""
        also = f" (and {known} known spill{'s' if known > 1 else ''}, KNOWN_SPILLS)" if known else ""
        print(f"{name}: {'ok' if ok else 'NO'} {tiles - spilled} of {tiles} loops with {fmas} {register} {instruction}{over} in registers{also}")
        if not ok:
            failures.append(f"{name} ({fmas} {register}{over}: {spilled} of {tiles} loops not in registers)")
    if failures:
        print(f"tile not kept in registers in: {', '.join(failures)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
