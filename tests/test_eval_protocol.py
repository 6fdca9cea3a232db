"""One evaluation protocol for the embedded (CPU) runs (issue 13 item 2): a teacher config and every
compression run of its teacher evaluate with the same metrics (set, KID/IS settings, feature
extractor), on the same real images (data class, path, seed, resolution, val_size, test_size) and
the whole of them (no trainer val/test batch caps, no ``eval_max_images``), so their numbers
compare; and every embedded config of a task kind uses that kind's protocol piece
(configs/metrics/embedded_*.yaml) and counts (configs/README.md, "Evaluation protocol of the
embedded runs").

Configs are read as ``gancomp fit --print_config`` reads them (the LightningCLI parser merging the
``-c`` stack and resolving sub-config paths such as ``metrics: ../metrics/<piece>.yaml``), not by
merging YAML by hand. Which teacher a run compresses is read from the headers of its files: the
``gancomp fit -c configs/teacher/<name>.yaml`` command that makes its teacher (the dataset pieces,
recipes and run files name it; a teacher config names itself).
"""

from __future__ import annotations

import functools
import glob
import os
import re

import pytest
import yaml
from _cli_helpers import REPO, discover_runs, run_stack

from lightning_gancomp.compare.compose import arms_of, compose_arm, compose_teacher, printed_config
from lightning_gancomp.compare.spec import load_spec
from lightning_gancomp.pretrained import shipped_teachers

#: the protocol piece of each task kind (configs/metrics/)
PIECES = {
    "lightning_gancomp.data.UnconditionalDataModule": "embedded_unconditional.yaml",
    "lightning_gancomp.data.ConditionalDataModule": "embedded_conditional.yaml",
    "lightning_gancomp.data.PairedDataModule": "embedded_translation.yaml",
    "lightning_gancomp.data.UnpairedDataModule": "embedded_translation.yaml",
}
#: the counts every config of a piece evaluates on (the pieces' headers say why conditional is smaller)
COUNTS = {
    "embedded_unconditional.yaml": {"val_size": 512, "test_size": 2048, "eval_batch_size": 256},
    "embedded_conditional.yaml": {"val_size": 512, "test_size": 1024, "eval_batch_size": 256},
    "embedded_translation.yaml": {"val_size": 512, "test_size": 2048, "eval_batch_size": 256},
}
#: data arguments that decide which real images are evaluated
DATA_KEYS = ("path", "resolution", "seed", "val_size", "test_size", "num_classes", "direction")
FIT_COMMAND = re.compile(r"gancomp fit((?:\s+-c\s+[\w./-]+\.yaml)+)")
TEACHER_COMMAND = re.compile(r"gancomp fit\s+-c\s+(configs/teacher/[\w./-]+\.yaml)")


def header(path: str) -> str:
    """The leading comment lines of a repository-relative config file."""
    with open(os.path.join(REPO, path)) as handle:
        return "".join(line for line in iter(handle.readline, "") if line.startswith("#"))


def runs_alone(path: str) -> bool:
    """Whether the file's header runs it on its own (``gancomp fit -c <itself>``, hardware and
    logger pieces allowed after it), as the CoroNet configs do."""
    for match in FIT_COMMAND.finditer(header(path)):
        files = match.group(1).split()[1::2]
        if files[0] == path and all(f.startswith(("configs/trainer/", "configs/logger/")) for f in files[1:]):
            return True
    return False


def embedded_stacks() -> dict[str, tuple[str, ...]]:
    """Every embedded run (a file with "embedded" in its name) and its ``-c`` files."""
    stacks = {run: tuple(run_stack(run)) for run in discover_runs() if "embedded" in run}
    for found in glob.glob(os.path.join(REPO, "configs", "**", "*embedded*.yaml"), recursive=True):
        path = os.path.relpath(found, REPO)
        if path not in stacks and runs_alone(path):
            stacks[path] = (path,)
    return dict(sorted(stacks.items()))


STACKS = embedded_stacks()


BUILTIN = re.compile(r"teacher_path:\s*builtin:(\w+)")


def teachers_of(stack: tuple[str, ...]) -> set[str]:
    """The teacher configs named by the headers of a run's files, and those that trained the
    shipped teachers (``builtin:<name>``) the files load (their manifest commands)."""
    named = {name for path in stack for name in TEACHER_COMMAND.findall(header(path))}
    for path in stack:
        with open(os.path.join(REPO, path)) as handle:
            for builtin in BUILTIN.findall(handle.read()):
                named.update(TEACHER_COMMAND.findall(shipped_teachers()[builtin]["command"]))
    return named


@functools.cache
def effective(stack: tuple[str, ...]) -> dict:
    """The stack's config as LightningCLI merges it (``--print_config``)."""
    return printed_config([os.path.join(REPO, p) for p in stack], [], " ".join(stack))


def protocol_of(config: dict) -> dict:
    """What decides an embedded run's evaluation numbers, from a merged config."""
    model, data, trainer = config["model"]["init_args"], config["data"], config["trainer"]
    return {
        "metrics": model.get("metrics"),
        "eval_max_images": model.get("eval_max_images"),
        "data": data["class_path"],
        **{f"data.{key}": data["init_args"].get(key) for key in DATA_KEYS},
        "limit_val_batches": trainer.get("limit_val_batches"),
        "limit_test_batches": trainer.get("limit_test_batches"),
    }


def differences(got: dict, expected: dict) -> dict:
    return {k: (got.get(k), expected.get(k)) for k in {*got, *expected} if got.get(k) != expected.get(k)}


def test_every_embedded_family_is_found():
    expected = [f"teacher/{t}_embedded" for t in ("stylegan2", "sngan", "biggan", "pix2pix", "cyclegan")]
    expected += ["cagan/ffhq256_embedded", "dcp/church256_embedded", "distill/stylegan2_embedded"]
    expected += ["ppcd/embedded_no_cd", "coronet/cyclegan_embedded", "coronet/pix2pix_unet_embedded"]
    assert {f"configs/{run}.yaml" for run in expected} <= set(STACKS)


@pytest.mark.parametrize("run", STACKS)
def test_every_embedded_run_names_one_teacher_config(run):
    """A new embedded run must say which teacher config made its teacher (the test below then
    holds it to that teacher's protocol)."""
    teachers = teachers_of(STACKS[run])
    assert len(teachers) == 1, f"{run}: name its teacher with '# gancomp fit -c configs/teacher/<name>.yaml'"
    (teacher,) = teachers
    assert STACKS.get(teacher) == (teacher,), f"{run}: {teacher} is not an embedded teacher run"


@pytest.mark.parametrize("run", [run for run in STACKS if teachers_of(STACKS[run]) != {run}])
def test_run_evaluates_with_its_teachers_protocol(run):
    (teacher,) = teachers_of(STACKS[run])
    got, expected = protocol_of(effective(STACKS[run])), protocol_of(effective((teacher,)))
    assert got == expected, f"{run} vs {teacher}: (run, teacher) = {differences(got, expected)}"


@pytest.mark.parametrize("run", STACKS)
def test_run_uses_the_protocol_piece_and_counts(run):
    """The same counts everywhere, no caps, and the piece of the run's task kind."""
    config = effective(STACKS[run])
    name = PIECES[config["data"]["class_path"]]
    data = config["data"]["init_args"]
    assert {key: data.get(key) for key in COUNTS[name]} == COUNTS[name], run
    protocol = protocol_of(config)
    assert protocol["limit_val_batches"] in (None, 1.0) and protocol["limit_test_batches"] in (None, 1.0), run
    assert protocol["eval_max_images"] is None, run
    with open(os.path.join(REPO, "configs", "metrics", name)) as handle:
        piece = yaml.safe_load(handle)
    metrics = protocol["metrics"]
    assert metrics["class_path"] == piece["class_path"], run
    assert {k: metrics["init_args"][k] for k in piece["init_args"]} == piece["init_args"], run


@pytest.mark.parametrize("name", ["stylegan2_embedded.yaml", "stylegan2_embedded_short.yaml"])
def test_embedded_comparison_evaluates_with_the_teachers_protocol(name, tmp_path):
    """An arm of an embedded comparison and its teacher row, as ``gancomp compare`` composes them
    (``<run>/config.yaml``) and ``gancomp test -c <run>/config.yaml`` then reads them."""
    spec = load_spec(os.path.join(REPO, "configs", "compare", name))
    (teacher,) = spec.teacher.train_config
    expected = protocol_of(effective((teacher,)))
    method = spec.methods[0]
    arms = {"teacher": compose_teacher(spec, method), "arm": compose_arm(spec, method, arms_of(spec)[0], 0.7)}
    for row, composed in arms.items():
        path = tmp_path / f"{row}.yaml"
        path.write_text(yaml.safe_dump(composed))
        got = protocol_of(printed_config([str(path)], [], row))
        assert got == expected, f"{name} {row} vs {teacher}: (arm, teacher) = {differences(got, expected)}"
