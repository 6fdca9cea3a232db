"""The methods a config can name under ``model`` (listed by ``gancomp <command> --help``)."""

from __future__ import annotations

import importlib
import pkgutil

import lightning_gancomp.methods as methods_package
from lightning_gancomp.methods.engine import AdversarialModule


def method_classes() -> list[type[AdversarialModule]]:
    """Every concrete LightningModule class defined in ``lightning_gancomp.methods``."""
    for info in pkgutil.iter_modules(methods_package.__path__):
        importlib.import_module(f"{methods_package.__name__}.{info.name}")
    found: dict[str, type[AdversarialModule]] = {}
    pending = [AdversarialModule]
    while pending:
        cls = pending.pop()
        if cls.__module__.startswith(methods_package.__name__):
            found[cls.__name__] = cls
        pending.extend(cls.__subclasses__())
    return [found[name] for name in sorted(found)]


def method_choices() -> str:
    return ", ".join(cls.__name__ for cls in method_classes())
