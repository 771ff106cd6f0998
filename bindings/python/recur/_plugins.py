"""Layer-type plugins for the in-process engine (Include/recur_plugin.h, docs/plugins.md)."""

from . import _library

__all__ = ["load_plugin"]


def load_plugin(path) -> None:
    """Loads the plugin shared library at ``path`` into this process and registers its layer
    types, all or none, for every ``Model`` loaded afterwards. The library stays loaded until the
    process exits. RecurError "io" (not a loadable library), "unsupported" (not a Recur plugin,
    another plugin ABI version, or the plugin refused), "format" (a malformed type table),
    "invalid_argument" (a type name already registered). It does not affect a daemon: start
    ``recurd --plugin PATH`` for that."""
    lib = _library.library()
    _library.check(lib, lib.recur_plugin_load(_library.encode_path(path)), "recur_plugin_load")
