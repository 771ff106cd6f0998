"""Fixtures: a running recurd, a client of it, and the in-process and remote transports."""

import os
import shutil
from pathlib import Path

import pytest

import recur
from support import GOLDEN_CASES, REPO, Local, Remote, model_path, start_daemon


@pytest.fixture(scope="session")
def recurd() -> Path:
    """The daemon binary: $RECURD, else the project's release build."""
    binary = Path(os.environ.get("RECURD") or REPO / ".build" / "release" / "recurd")
    assert binary.is_file(), f"recurd not found at {binary} (swift build -c release, or set RECURD)"
    return binary


@pytest.fixture(scope="session")
def served_models(tmp_path_factory) -> Path:
    """A models directory with every golden model under its case name."""
    models = tmp_path_factory.mktemp("models")
    for case in GOLDEN_CASES:
        shutil.copyfile(model_path(case), models / f"{case}.safetensors")
    return models


@pytest.fixture(scope="session")
def daemon(recurd, served_models):
    """The endpoint of a recurd serving ``served_models``, for the whole test session."""
    with start_daemon(recurd, served_models) as endpoint:
        yield endpoint


@pytest.fixture
def client(daemon):
    with recur.Client(daemon, timeout=20.0) as client:
        yield client


@pytest.fixture(params=["local", "remote"])
def transport(request):
    """Each test using it runs twice: through librecur.so and through recurd."""
    if request.param == "local":
        local = Local()
        yield local
        local.close()
    else:
        yield Remote(request.getfixturevalue("client"))
