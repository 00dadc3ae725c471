"""A module imported on its first use: rule jobs pay only for the libraries they call.

``stats = lazy_module("scipy.stats")`` at the top of a module reads like an import, and
scipy.stats is imported when an attribute of ``stats`` is first looked up (not before:
``"scipy.stats" in sys.modules`` stays False until then). For type hints use
``if TYPE_CHECKING: import ...`` (annotations are strings under
``from __future__ import annotations``).
"""

from __future__ import annotations

import importlib
from types import ModuleType


class LazyModule:
    """Stands for the module ``name``; imports it when one of its attributes is used."""

    def __init__(self, name: str):
        self._name = name
        self._module: ModuleType | None = None

    def __getattr__(self, attr: str):
        if attr.startswith("__") and attr.endswith("__"):  # copy, pickle, inspect probes
            raise AttributeError(attr)
        if self._module is None:
            self._module = importlib.import_module(self._name)
        return getattr(self._module, attr)

    def __repr__(self) -> str:
        state = "imported" if self._module is not None else "not imported yet"
        return f"<lazy module {self._name!r} ({state})>"


def lazy_module(name: str) -> LazyModule:
    """``name`` (e.g. ``"scipy.stats"``), imported on its first attribute access."""
    return LazyModule(name)
