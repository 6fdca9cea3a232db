"""Imports flow one way (DESIGN): ``cli → commands → methods → {losses, pruning, metrics, data} →
nets``. The torch-only packages never import Lightning or the methods, not even lazily, and the
commands read no model attribute by ``getattr`` (they use the methods' typed API)."""

import ast
import pathlib
import subprocess
import sys

PACKAGE = pathlib.Path(__file__).resolve().parents[1] / "lightning_gancomp"
FORBIDDEN = ("pytorch_lightning", "lightning", "lightning_gancomp.methods", "lightning_gancomp.cli")


def _imported_modules(path: pathlib.Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
    return names


def _offending(name: str) -> bool:
    return any(name == f or name.startswith(f + ".") for f in FORBIDDEN)


def test_torch_only_packages_never_import_lightning_or_methods():
    files = sorted((PACKAGE / "nets").rglob("*.py")) + sorted((PACKAGE / "pruning").rglob("*.py"))
    bad = {str(f.relative_to(PACKAGE)): sorted(filter(_offending, _imported_modules(f))) for f in files}
    assert not {f: names for f, names in bad.items() if names}


def test_importing_nets_and_pruning_loads_no_lightning():
    modules = [f"lightning_gancomp.{p.parent.name}.{p.stem}" for p in (PACKAGE / "nets").glob("*.py")]
    modules += [f"lightning_gancomp.pruning.{p.stem}" for p in (PACKAGE / "pruning").glob("*.py")]
    code = "import sys\n" + "".join(f"import {m}\n" for m in modules)
    code += "print([m for m in sys.modules if m.split('.')[0] in ('pytorch_lightning', 'lightning')])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_commands_read_no_model_attribute_by_getattr():
    for path in sorted((PACKAGE / "commands").glob("*.py")):
        calls = [
            node
            for node in ast.walk(ast.parse(path.read_text()))
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) in ("getattr", "hasattr")
        ]
        assert not calls, f"{path.name} uses getattr/hasattr"


def test_the_cli_imports_optional_heavy_packages_only_when_used():
    # what --help and every subcommand's parser need; W&B, LPIPS, HDF5, LMDB and ONNX come later
    code = (
        "import sys, lightning_gancomp.cli, lightning_gancomp.data.datamodules\n"
        "from lightning_gancomp.methods.catalogue import method_classes\n"
        "method_classes()\n"
        "heavy = ('wandb', 'lpips', 'h5py', 'lmdb', 'onnx', 'onnxruntime', 'torchprofile')\n"
        "print([m for m in heavy if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "[]"
