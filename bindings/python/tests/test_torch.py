"""A PyTorch model exported with recur.save (the docs/python.md recipe) computes as PyTorch does.

torch is optional for the package, and scripts/setup.sh does not install it (PyPI's Linux wheels
bring gigabytes of CUDA libraries): these tests run where torch is installed and are reported as
skipped elsewhere."""

import numpy as np
import pytest

import recur
from support import assert_close

torch = pytest.importorskip("torch")
nn = torch.nn


class Tagger(nn.Module):
    """tokens → embedding → 2-layer LSTM → linear per step. Attribute names are the layer names."""

    def __init__(self):
        super().__init__()
        self.embed = nn.Embedding(30, 8)
        self.encoder = nn.LSTM(8, 16, num_layers=2, batch_first=True)
        self.head = nn.Linear(16, 5)

    arch = {"format": 1, "input": {"kind": "tokens", "vocab_size": 30}, "layers": [
        {"name": "embed", "type": "embedding", "num_embeddings": 30, "embedding_dim": 8},
        {"name": "encoder", "type": "lstm", "input_size": 8, "hidden_size": 16, "num_layers": 2},
        {"name": "head", "type": "linear", "in_features": 16, "out_features": 5}]}

    def forward(self, ids, lengths):
        packed = nn.utils.rnn.pack_padded_sequence(self.embed(ids), lengths, batch_first=True, enforce_sorted=False)
        steps, (h_n, c_n) = self.encoder(packed)
        steps, _ = nn.utils.rnn.pad_packed_sequence(steps, batch_first=True, total_length=ids.shape[1])
        valid = (torch.arange(ids.shape[1])[None, :] < lengths[:, None])[:, :, None]
        return {"output": self.head(steps) * valid, "encoder.h_n": h_n, "encoder.c_n": c_n}


class BiGRUClassifier(nn.Module):
    """features → bidirectional GRU → final state (forward ‖ backward) → linear → log-softmax."""

    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(6, 7, bidirectional=True, batch_first=True)
        self.head = nn.Linear(14, 3)

    arch = {"format": 1, "input": {"kind": "features", "size": 6}, "labels": ["x", "y", "z"], "layers": [
        {"name": "gru", "type": "gru", "input_size": 6, "hidden_size": 7, "bidirectional": True},
        {"name": "pool", "type": "pool", "mode": "final_state"},
        {"name": "head", "type": "linear", "in_features": 14, "out_features": 3},
        {"name": "logp", "type": "log_softmax"}]}

    def forward(self, x, lengths):
        packed = nn.utils.rnn.pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        _, h_n = self.gru(packed)
        return {"output": torch.log_softmax(self.head(torch.cat([h_n[0], h_n[1]], dim=-1)), dim=-1),
                "gru.h_n": h_n}


@pytest.mark.parametrize("module, make_input", [
    (Tagger, lambda g: torch.randint(0, 30, (4, 9), generator=g)),
    (BiGRUClassifier, lambda g: torch.randn(4, 9, 6, generator=g)),
])
def test_exported_module_matches_pytorch(tmp_path, module, make_input):
    torch.manual_seed(0)
    net = module().eval()
    path = tmp_path / "model.safetensors"
    recur.save(path, module.arch, net.state_dict())

    generator = torch.Generator().manual_seed(1)
    x = make_input(generator)
    lengths = torch.tensor([9, 4, 1, 7])
    with torch.no_grad():
        expected = {name: value.numpy() for name, value in net(x, lengths).items()}
    with recur.Model(path) as model:
        outputs = model.run(x.numpy(), lengths=lengths.numpy())
        assert model.labels == module.arch.get("labels")
    assert set(outputs) == set(expected)
    for name, value in expected.items():
        assert_close(outputs[name], value.astype(np.float32), name)


def test_state_dict_tensors_that_require_grad_are_saved(tmp_path):
    net = Tagger()
    tensors = dict(net.named_parameters())  # requires_grad=True: .numpy() alone would fail
    path = tmp_path / "model.safetensors"
    recur.save(path, Tagger.arch, tensors)
    loaded = recur.load_tensors(path)
    np.testing.assert_array_equal(loaded["head.weight"], net.head.weight.detach().numpy())
