"""``--help`` that helps: the non-training commands show their own options first, and ``--model``
lists the methods to choose from."""

import pytest

from lightning_gancomp.cli import main


def _help(capsys, *args):
    with pytest.raises(SystemExit) as stop:
        main([*args, "--help"])
    assert stop.value.code == 0
    return capsys.readouterr().out.splitlines()


@pytest.mark.parametrize(
    ("command", "own"), [("prune", "--plan_path"), ("export", "--output"), ("profile", "--repeats")]
)
def test_commands_show_their_own_options_first(capsys, command, own):
    lines = _help(capsys, command)
    assert lines[0].startswith(f"usage: gancomp {command} -c CONFIG")
    body = lines[1:]
    first_own = next(i for i, line in enumerate(body) if line.strip().startswith(own))
    first_trainer = next(i for i, line in enumerate(body) if line.strip().startswith("--trainer"))
    assert first_own < first_trainer and first_own < 40


def test_model_help_lists_the_methods(capsys):
    text = " ".join(line.strip() for line in _help(capsys, "fit"))
    assert "The method: one of" in text
    for name in ("CAGANModule", "DCPModule", "GanModule", "CycleGanModule"):
        assert name in text
