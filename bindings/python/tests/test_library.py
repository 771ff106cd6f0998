"""Finding librecur.so, and the version it reports."""

import ctypes
import os
import re
import subprocess
import sys

import recur
from recur import _library
from support import REPO


def test_version_is_the_libraries():
    lib = ctypes.CDLL(str(next(p for p in _library.candidates() if p.is_file())))
    lib.recur_version.restype = ctypes.c_char_p
    assert recur.__version__ == lib.recur_version().decode()
    assert re.fullmatch(r"\d+\.\d+\.\d+", recur.__version__)


def test_package_version_is_the_libraries():
    # pyproject.toml states the version statically; it must follow the engine's (Version.swift).
    pyproject = (REPO / "bindings" / "python" / "pyproject.toml").read_text()
    assert re.search(r'^version = "([^"]+)"$', pyproject, re.MULTILINE).group(1) == recur.__version__


def test_search_order(monkeypatch):
    monkeypatch.setenv("RECUR_LIBRARY", "/opt/custom/librecur.so")
    assert [str(p) for p in _library.candidates()] == ["/opt/custom/librecur.so"]
    monkeypatch.delenv("RECUR_LIBRARY")
    package = os.path.dirname(os.path.abspath(recur.__file__))
    found = [str(p) for p in _library.candidates()]
    assert found[0] == os.path.join(package, "librecur.so")
    assert found[-1] == os.path.join(os.getcwd(), ".build", "release", "librecur.so")


def run_python(code: str, library, cwd=None) -> subprocess.CompletedProcess:
    """``code`` in a fresh interpreter that imports this same recur package, with RECUR_LIBRARY set."""
    package_parent = os.path.dirname(os.path.dirname(os.path.abspath(recur.__file__)))
    env = {**os.environ, "RECUR_LIBRARY": str(library), "PYTHONPATH": package_parent}
    return subprocess.run([sys.executable, "-c", code], env=env, cwd=cwd, capture_output=True, text=True, timeout=60)


def test_unusable_library_is_a_recur_error(tmp_path):
    not_a_library = tmp_path / "librecur.so"
    not_a_library.write_text("not ELF")
    code = ("import recur\ntry:\n    recur.Model('m.safetensors')\n"
            "except recur.RecurError as error:\n    print(error.code, error.message)\n")
    for path, words in ((tmp_path / "absent.so", "not found"), (not_a_library, "cannot be loaded")):
        result = run_python(code, path)
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith("io ") and str(path) in result.stdout and words in result.stdout


def test_import_does_not_need_the_library(tmp_path):
    # save and load_tensors are pure Python.
    code = ("import recur, numpy\nrecur.save_tensors('t.safetensors', {'a': numpy.ones(2)})\n"
            "print(recur.load_tensors('t.safetensors')['a'].sum())\n")
    result = run_python(code, tmp_path / "absent.so", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "2.0"


def test_the_package_under_test_is_the_installed_one():
    # scripts/test.sh installs the package into a fresh venv and names it here: the tests must
    # not pick up the source tree instead.
    venv = os.environ.get("RECUR_EXPECT_INSTALLED")
    package = os.path.realpath(os.path.dirname(recur.__file__))
    if venv:
        assert package.startswith(os.path.realpath(venv) + os.sep), package
        assert "site-packages" in package
    assert os.path.isfile(os.path.join(package, "py.typed"))  # package data came along
