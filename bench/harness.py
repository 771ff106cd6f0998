"""The parts of the inference benchmark that need only numpy: configurations, work counts, the
Recur model a configuration becomes, error measure, memory readings and the results table.

A configuration is one entry of ../shared/bench/configs.json: {"id", "cell": "lstm"|"gru"|"rnn",
"I", "H", "T", "B", optional "layers" (1) and "bidirectional" (false)}.
"""
import ctypes
import json
import os
import resource
import time

import numpy as np

GATES = {"lstm": 4, "gru": 3, "rnn": 1}
LAYER = "rnn"  # the recurrent layer's name in the Recur model: its weights are "rnn.<torch name>"
REQUIRED_KEYS = ("id", "cell", "I", "H", "T", "B")


def load_configs(path) -> list[dict]:
    """The "configs" list of a configs.json file, each checked for the keys the benchmark uses."""
    with open(path) as f:
        configs = json.load(f)["configs"]
    for config in configs:
        missing = [key for key in REQUIRED_KEYS if key not in config]
        if missing:
            raise ValueError(f"{path}: config {config.get('id', '?')} lacks {', '.join(missing)}")
        if config["cell"] not in GATES:
            raise ValueError(f"{path}: config {config['id']}: cell {config['cell']!r} is not one of {sorted(GATES)}")
    return configs


def random_configs(count: int, seed: int, max_flops: float = 6e9) -> list[dict]:
    """`count` configurations of the shared list's kinds with sizes drawn at random (a fixed `seed`
    draws the same ones), to look for shapes the fixed lists miss: every cell, 1 or 2 layers, one or
    two directions, H and I from 32 to 1024 (not only multiples of 8), B from 1 to 128, T from 20 to
    200, halved while a pass is over `max_flops` so that each is timed in seconds."""
    rng = np.random.default_rng(seed)
    configs = []
    for index in range(count):
        cell = str(rng.choice(["lstm", "lstm", "gru", "rnn"]))  # LSTMs, the kind behind most often, twice
        config = {"cell": cell, "I": int(rng.integers(32, 1025)), "H": int(rng.integers(32, 1025)),
                  "T": int(rng.choice([20, 50, 100, 200])), "B": int(rng.choice([1, 1, 2, 3, 4, 6, 8, 12, 16, 32, 64, 128]))}
        if rng.random() < 0.25:
            config["layers"] = 2
        if rng.random() < 0.25:
            config["bidirectional"] = True
        while flops(config) > max_flops and config["T"] > 10:
            config["T"] //= 2
        shape = f"{cell}{config.get('layers', '')}{'bi' if config.get('bidirectional') else ''}"
        config["id"] = f"random{index}-{shape}-{config['H']}-i{config['I']}-b{config['B']}-t{config['T']}"
        configs.append(config)
    return configs


def directions(config) -> int:
    return 2 if config.get("bidirectional") else 1


def layer_inputs(config) -> list[int]:
    """Input width of each stacked layer: I, then D·H."""
    return [config["I"]] + [directions(config) * config["H"]] * (config.get("layers", 1) - 1)


def flops(config) -> int:
    """Floating-point operations of one forward pass over the batch, counting the two matrix
    products of every step: 2·B·T·(in + H)·G·H per layer and direction. Activations and the
    element-wise cell update are left out (they are O(B·T·G·H), a few percent at these sizes)."""
    B, T, H, G = config["B"], config["T"], config["H"], GATES[config["cell"]]
    return sum(2 * B * T * (width + H) * G * H * directions(config) for width in layer_inputs(config))


def weight_shapes(config) -> dict[str, tuple]:
    """PyTorch's state_dict names and shapes for nn.LSTM/GRU/RNN(I, H, num_layers, bidirectional),
    which model-format.md adopts unchanged: weight_ih_l{k}{_reverse} [G·H, in_k], weight_hh [G·H, H],
    bias_ih and bias_hh [G·H]."""
    H, G = config["H"], GATES[config["cell"]]
    shapes = {}
    for k, width in enumerate(layer_inputs(config)):
        for suffix in ("", "_reverse")[:directions(config)]:
            shapes[f"weight_ih_l{k}{suffix}"] = (G * H, width)
            shapes[f"weight_hh_l{k}{suffix}"] = (G * H, H)
            shapes[f"bias_ih_l{k}{suffix}"] = (G * H,)
            shapes[f"bias_hh_l{k}{suffix}"] = (G * H,)
    return shapes


def architecture(config) -> dict:
    """The Recur architecture (model-format.md) of a configuration: features [B, T, I] into one
    recurrent layer named LAYER, whose per-step output [B, T, D·H] is the model's output."""
    layer = {"name": LAYER, "type": config["cell"], "input_size": config["I"], "hidden_size": config["H"],
             "num_layers": config.get("layers", 1), "bidirectional": bool(config.get("bidirectional"))}
    if config.get("recurrent_weights"):
        layer["recurrent_weights"] = config["recurrent_weights"]  # "float16": Recur's opt-in half W_hh
    if config.get("precision"):
        layer["precision"] = config["precision"]  # "bfloat16": Recur's opt-in products in bfloat16
    return {"format": 1, "name": config["id"], "input": {"kind": "features", "size": config["I"]}, "layers": [layer]}


def model_tensors(state_dict) -> dict:
    """A recurrent module's state_dict under the Recur layer's name."""
    return {f"{LAYER}.{name}": value for name, value in state_dict.items()}


def random_weights(config, seed=0) -> dict[str, np.ndarray]:
    """Weights drawn as PyTorch initialises a recurrent module (uniform ±1/√H), for timing Recur
    when torch is not installed."""
    rng = np.random.default_rng(seed)
    bound = 1 / np.sqrt(config["H"])
    return {name: rng.uniform(-bound, bound, shape).astype(np.float32) for name, shape in weight_shapes(config).items()}


def random_input(config, seed=9) -> np.ndarray:
    """Features [B, T, I], standard normal."""
    shape = (config["B"], config["T"], config["I"])
    return np.random.default_rng(seed).standard_normal(shape, dtype=np.float32)


def relative_error(found: np.ndarray, expected: np.ndarray) -> float:
    """max |found − expected| / max |expected|: the error relative to the tensor's scale, so that
    elements near zero do not dominate."""
    if found.shape != expected.shape:
        raise ValueError(f"shape {found.shape} differs from the reference {expected.shape}")
    scale = float(np.max(np.abs(expected), initial=0.0)) or 1.0
    return float(np.max(np.abs(found.astype(np.float64) - expected), initial=0.0)) / scale


# Timing.

WARM_UP_SECONDS = 0.5


def warm_up(run, seconds=WARM_UP_SECONDS, clock=time.perf_counter) -> int:
    """Calls run() until `seconds` have passed (at least once); returns how many calls it made.

    Every engine warms up this way before peers.median_ms (whose 3 warm-up calls stay). numpy's
    OpenBLAS starts a thread per core at import that busy-waits about 100 ms before it sleeps; a
    pass timed within that window competes with it for the two cores. Recur loads in milliseconds,
    so without this its batch-1 passes were timed inside the window (lstm-256-b1 1.7–2.0 ms, with
    5 ms passes whenever the spinner held a core that the pool's other thread needed, against
    0.9 ms after it), while ONNX Runtime's and PyTorch's slower set-up outlasted it."""
    calls, start = 0, clock()
    while calls == 0 or clock() - start < seconds:
        run()
        calls += 1
    return calls


# Memory, from /proc/self/status (kB) and getrusage (KiB on Linux), reported in MiB.

def _status_mib(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise RuntimeError(f"/proc/self/status has no {field}")


def resident_mib() -> float:
    """This process's resident set now."""
    return _status_mib("VmRSS")


def reset_peak() -> None:
    """Sets the kernel's resident high-water mark (VmHWM) back to the current resident set, so that
    peak_since_reset_mib() measures one phase (Linux ≥ 4.0, /proc/PID/clear_refs value 5). Memory
    malloc holds free is given back first (glibc's malloc_trim), or a phase that reuses it would
    not raise the mark: a 0.1 MiB model loaded after a first one measured 0.00x its file."""
    _trim_malloc()
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")


def _trim_malloc() -> None:
    try:
        libc = ctypes.CDLL(None)
        trim = libc.malloc_trim  # int malloc_trim(size_t pad);
    except (OSError, AttributeError):
        return  # not glibc: the mark may then miss what the phase reused
    trim.argtypes, trim.restype = [ctypes.c_size_t], ctypes.c_int
    trim(0)


def peak_since_reset_mib() -> float:
    return _status_mib("VmHWM")


def peak_mib() -> float:
    """The process's peak resident set over its whole life (ru_maxrss)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# The results table.

COLUMNS = ["config", "Recur ms", "ORT ms", "torch ms", "Recur/best", "Recur GFLOP/s",
           "MiB over imports Recur/ORT/torch", "load peak / file", "max rel err"]


def _number(value, digits) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _peaks(row) -> str:
    """Each engine's peak resident set above its process's resident set once its libraries were
    imported: the memory it needed for this model, input and run."""
    def above(engine):
        peak, baseline = row.get(f"{engine}_peak_mib"), row.get(f"{engine}_baseline_mib")
        return None if peak is None else peak - baseline
    return "/".join(_number(above(engine), 0) for engine in ("recur", "onnxruntime", "torch"))


def table_row(row) -> list[str]:
    """One result (bench.py's dict: "id", "recur_ms", "onnxruntime_ms", "torch_ms", …) as table cells."""
    peers = [row[key] for key in ("onnxruntime_ms", "torch_ms") if row.get(key) is not None]
    ratio = row["recur_ms"] / min(peers) if peers and row.get("recur_ms") is not None else None
    gflops = row["flops"] / (row["recur_ms"] * 1e6) if row.get("recur_ms") else None
    load = row.get("load_peak_mib")
    load_ratio = None if load is None else f"{load:.1f} / {row['file_mib']:.1f} MiB = {load / row['file_mib']:.2f}x"
    return [row["id"], _number(row.get("recur_ms"), 3), _number(row.get("onnxruntime_ms"), 3),
            _number(row.get("torch_ms"), 3), _number(ratio, 2), _number(gflops, 1), _peaks(row),
            load_ratio or "—", _verdict(row)]


def _verdict(row) -> str:
    if row.get("errors"):
        return "FAILED"
    return "unverified" if row.get("max_rel_err") is None else f"{row['max_rel_err']:.1e}"


def progress_line(row) -> str:
    """One result as "column value" pairs, printed as each configuration finishes."""
    cells = zip(COLUMNS[1:], table_row(row)[1:])
    return f"{row['id']}: " + "  ".join(f"{column} {cell}" for column, cell in cells)


def format_table(rows, markdown=False) -> str:
    cells = [COLUMNS] + [table_row(row) for row in rows]
    if markdown:
        lines = ["| " + " | ".join(line) + " |" for line in cells]
        lines.insert(1, "|" + "|".join("---" if i == 0 else "---:" for i in range(len(COLUMNS))) + "|")
        return "\n".join(lines)
    widths = [max(len(line[i]) for line in cells) for i in range(len(COLUMNS))]
    return "\n".join("  ".join(cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(line, widths)))
                     for line in cells)


def file_mib(path) -> float:
    return os.path.getsize(path) / 2**20
