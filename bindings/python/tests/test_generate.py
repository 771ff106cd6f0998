"""Generation: deterministic for a seed, greedy = arg-max of the model's own logits, stop tokens."""

import numpy as np
import pytest

import recur
from support import Local

PROMPT = [1, 5, 2]


def test_same_seed_same_tokens(transport):
    first = transport.generate("char_lm", PROMPT, 20, temperature=1.0, seed=42)
    second = transport.generate("char_lm", PROMPT, 20, temperature=1.0, seed=42)
    assert first == second
    assert len(first) == 20 and all(0 <= t < 12 for t in first)
    others = {tuple(transport.generate("char_lm", PROMPT, 20, seed=seed)) for seed in range(5)}
    assert len(others) > 1, "different seeds should not all give the same 20 tokens"


def test_greedy_follows_the_arg_max_of_the_logits(transport):
    tokens = transport.generate("char_lm", PROMPT, 12, temperature=0)
    logits = transport.run("char_lm", np.array([PROMPT + tokens[:-1]]))["output"][0]
    predicted = logits[len(PROMPT) - 1:].argmax(axis=-1)
    assert tokens == predicted.tolist()


def test_top_k_1_and_tiny_top_p_are_greedy(transport):
    greedy = transport.generate("char_lm", PROMPT, 10, temperature=0)
    assert transport.generate("char_lm", PROMPT, 10, temperature=1.5, top_k=1, seed=7) == greedy
    assert transport.generate("char_lm", PROMPT, 10, temperature=1.5, top_p=1e-6, seed=7) == greedy


def test_stop_token_ends_generation_and_is_not_returned(transport):
    full = transport.generate("char_lm", PROMPT, 15, temperature=0.8, seed=3)
    stop = full[4]
    cut = transport.generate("char_lm", PROMPT, 15, temperature=0.8, seed=3, stop=[stop, 99])
    assert cut == full[:full.index(stop)]
    assert transport.generate("char_lm", PROMPT, 0, seed=3) == []


def test_sampling_follows_the_softmax_of_the_logits():
    # The first sampled token's frequencies over many seeds approach softmax(logits / temperature);
    # at 0.4 the distribution is peaked enough that temperature 0.5 would be 0.066 away.
    local = Local()
    try:
        temperature = 0.4
        logits = local.run("char_lm", np.array([PROMPT]))["output"][0, -1].astype(np.float64)
        probabilities = np.exp((logits - logits.max()) / temperature)
        probabilities /= probabilities.sum()
        draws = [local.generate("char_lm", PROMPT, 1, temperature=temperature, seed=s)[0] for s in range(4000)]
        frequencies = np.bincount(draws, minlength=probabilities.size) / len(draws)
        assert 0.5 * np.abs(frequencies - probabilities).sum() < 0.045
    finally:
        local.close()


def test_huge_max_tokens_is_an_error_not_a_crash(transport):
    with pytest.raises(recur.RecurError) as error:
        transport.generate("char_lm", PROMPT, 2**62)
    assert error.value.code in ("out_of_memory", "too_large", "bad_request")
    assert "max_tokens" in error.value.message


def test_generation_needs_a_language_model(transport):
    with pytest.raises(recur.RecurError) as error:
        transport.generate("bilstm_classifier", PROMPT, 5)
    assert error.value.code == "unsupported"


# Argument mistakes are "invalid_argument" in-process and may be the daemon's "bad_request" remotely.
ARGUMENT = {"invalid_argument", "bad_request"}


@pytest.mark.parametrize("arguments, codes", [
    ({"prompt": [], "max_tokens": 3}, {"invalid_input", "bad_request"}),
    ({"prompt": [1, 12], "max_tokens": 3}, {"invalid_input"}),
    ({"prompt": [1, 2**40], "max_tokens": 3}, {"invalid_input"}),
    ({"prompt": [1], "max_tokens": -1}, ARGUMENT),
    ({"prompt": [1], "max_tokens": 3, "top_k": -2}, ARGUMENT),
    ({"prompt": [1], "max_tokens": 3, "top_p": 0.0}, ARGUMENT),
    ({"prompt": [1], "max_tokens": 3, "temperature": -1.0}, ARGUMENT),
    ({"prompt": [1], "max_tokens": 3, "temperature": float("nan")}, ARGUMENT),
    ({"prompt": [1], "max_tokens": 3, "seed": -1}, ARGUMENT),
    ({"prompt": [[1, 2]], "max_tokens": 3}, ARGUMENT),
])
def test_bad_generation_arguments(transport, arguments, codes):
    with pytest.raises(recur.RecurError) as error:
        transport.generate("char_lm", **arguments)
    assert error.value.code in codes
    assert error.value.message
