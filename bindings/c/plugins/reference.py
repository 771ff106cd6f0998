"""numpy (float64) references for the example plugin's layer types, written from the equations in
example_layers.c's header comment and PyTorch's definitions, independently of the C code. The
tests compare the plugin, run through Recur, against these."""

import numpy as np


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


def _recurrent(step, x, lengths, states, reverse):
    """Runs `step(x_t [F], states) -> states` over each sequence's valid steps (t = len-1 … 0 when
    `reverse`); the output at each step is the new first state. x [B, T, F]; states: list of
    [B, W] arrays. Returns (y [B, T, W0] with zeros at padding, final states)."""
    batch, steps, _ = x.shape
    lengths = np.full(batch, steps) if lengths is None else np.asarray(lengths)
    y = np.zeros((batch, steps, states[0].shape[1]))
    finals = [s.astype(np.float64).copy() for s in states]
    for b in range(batch):
        order = range(lengths[b] - 1, -1, -1) if reverse else range(lengths[b])
        current = [s[b] for s in finals]
        for t in order:
            current = step(x[b, t].astype(np.float64), current)
            y[b, t] = current[0]
        for s, value in zip(finals, current):
            s[b] = value
    return y, finals


def mgu(x, params, lengths=None, h0=None, reverse=False):
    """Minimal gated unit. params: weight_ih [2H, F], weight_hh [2H, H], optional bias_ih, bias_hh."""
    w_ih, w_hh = params["weight_ih"].astype(np.float64), params["weight_hh"].astype(np.float64)
    hidden = w_hh.shape[1]
    b = (params["bias_ih"] + params["bias_hh"]).astype(np.float64) if "bias_ih" in params else np.zeros(2 * hidden)

    def step(x_t, state):
        (h,) = state
        f = sigmoid(w_ih[:hidden] @ x_t + w_hh[:hidden] @ h + b[:hidden])
        n = np.tanh(w_ih[hidden:] @ x_t + w_hh[hidden:] @ (f * h) + b[hidden:])
        return [(1 - f) * h + f * n]

    h0 = np.zeros((x.shape[0], hidden)) if h0 is None else h0
    y, (h_n,) = _recurrent(step, x, lengths, [h0], reverse)
    return y, h_n


def peephole_lstm(x, params, lengths=None, h0=None, c0=None, reverse=False):
    """LSTM with peepholes. params: weight_ih [4H, F], weight_hh [4H, H], optional biases,
    weight_peephole [3, H] (i, f, o)."""
    w_ih, w_hh = params["weight_ih"].astype(np.float64), params["weight_hh"].astype(np.float64)
    hidden = w_hh.shape[1]
    b = (params["bias_ih"] + params["bias_hh"]).astype(np.float64) if "bias_ih" in params else np.zeros(4 * hidden)
    p_i, p_f, p_o = params["weight_peephole"].astype(np.float64)

    def step(x_t, state):
        h, c = state
        z = w_ih @ x_t + w_hh @ h + b
        i = sigmoid(z[:hidden] + p_i * c)
        f = sigmoid(z[hidden:2 * hidden] + p_f * c)
        g = np.tanh(z[2 * hidden:3 * hidden])
        c = f * c + i * g
        o = sigmoid(z[3 * hidden:] + p_o * c)
        return [o * np.tanh(c), c]

    zeros = np.zeros((x.shape[0], hidden))
    y, (h_n, c_n) = _recurrent(step, x, lengths, [zeros if h0 is None else h0, zeros if c0 is None else c0], reverse)
    return y, h_n, c_n


def layer_norm(x, weight=None, bias=None, eps=1e-5):
    """torch.nn.functional.layer_norm over the last axis (biased variance)."""
    x = x.astype(np.float64)
    mean = x.mean(axis=-1, keepdims=True)
    variance = ((x - mean) ** 2).mean(axis=-1, keepdims=True)
    y = (x - mean) / np.sqrt(variance + eps)
    return y * weight + bias if weight is not None else y


def zero_padding(y, lengths):
    """Per-step outputs at or past each sequence's length set to 0, as Recur's model does."""
    y = y.copy()
    if lengths is not None:
        for b, length in enumerate(lengths):
            y[b, length:] = 0
    return y
