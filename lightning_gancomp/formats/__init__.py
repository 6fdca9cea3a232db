"""Official checkpoint layouts. Importing this package registers every converter with
``lightning_gancomp.checkpoints`` (one module per family)."""

import importlib
import importlib.util

_FAMILIES = ("stylegan2", "sngan", "biggan", "pix2pix")

for _family in _FAMILIES:
    _name = f"{__name__}.{_family}"
    if importlib.util.find_spec(_name) is not None:
        importlib.import_module(_name)
