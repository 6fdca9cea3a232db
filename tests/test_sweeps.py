"""W&B sweep files: the agent's command line, rebuilt with wandb's own helpers, runs one trial."""

import glob
import os

import pytest
import yaml
from _cli_helpers import REPO, run_gancomp, write_tiny_teacher
from wandb.sdk.launch.sweeps.utils import create_sweep_command, create_sweep_command_args


@pytest.fixture
def teacher_ckpt(tmp_path_factory) -> str:
    """A tiny 32 px teacher (G + D) in our training-checkpoint layout."""
    return write_tiny_teacher(str(tmp_path_factory.mktemp("teacher") / "teacher.ckpt"))


SWEEPS = sorted(glob.glob(os.path.join(REPO, "sweeps", "*.yaml")))


def first_trial_values(parameters: dict) -> dict:
    """A concrete value per parameter, as the agent would send for one trial."""
    values = {}
    for name, spec in parameters.items():
        if "values" in spec:
            values[name] = spec["values"][0]
        elif "value" in spec:
            values[name] = spec["value"]
        else:
            values[name] = spec["min"]
    return values


def agent_argv(sweep: dict, values: dict) -> list[str]:
    """The argv the W&B agent would exec (wandb_agent.Agent._command_run), minus env/python."""
    command = create_sweep_command(list(sweep["command"]))
    sweep_vars = create_sweep_command_args({"args": {k: {"value": v} for k, v in values.items()}})
    sweep_vars.update(env=["/usr/bin/env"], interpreter=["python"], program=[sweep["program"]])
    argv: list[str] = []
    for chunk in command:
        chunk = str(chunk)
        if chunk.startswith("${") and chunk.endswith("}"):
            argv += sweep_vars.get(chunk[2:-1]) or []
        else:
            argv.append(chunk)
    return argv


def test_there_is_a_sweep():
    assert SWEEPS


@pytest.mark.parametrize("path", SWEEPS, ids=os.path.basename)
def test_sweep_uses_full_dotted_keys_and_config_before_args(path):
    with open(path) as handle:
        sweep = yaml.safe_load(handle)
    command = [str(c) for c in sweep["command"]]
    assert "${args}" in command
    assert command.index("--config") < command.index("${args}")
    for name in sweep["parameters"]:
        assert name.split(".")[0] in {"model", "data", "trainer", "seed_everything"}, name


@pytest.mark.parametrize("path", SWEEPS, ids=os.path.basename)
def test_one_trial_runs_through_the_cli(path, tmp_path, monkeypatch, teacher_ckpt, capsys):
    with open(path) as handle:
        sweep = yaml.safe_load(handle)
    argv = agent_argv(sweep, first_trial_values(sweep["parameters"]))
    assert argv[:4] == ["/usr/bin/env", "python", "-m", "lightning_gancomp.cli"]
    cli_args = argv[4:]
    assert [a for a in cli_args if a.startswith("--model.init_args.")]  # parameters arrived as flags
    # configs are relative to the repository; outputs go to a temporary directory
    cli_args = [os.path.join(REPO, a) if a.startswith("configs/") else a for a in cli_args]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("WANDB_MODE", "offline")
    code, _, err = run_gancomp(
        cli_args
        + [
            f"--model.init_args.teacher_path={teacher_ckpt}",
            f"--model.init_args.discriminator_path={teacher_ckpt}",
            "--trainer.fast_dev_run=4",
        ],
        capsys,
    )
    assert code == 0, err[-2000:]
