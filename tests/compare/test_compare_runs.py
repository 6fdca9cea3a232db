"""``gancomp compare`` end to end on a tiny comparison: resumable (a kill mid-arm), incremental
(a new method runs alone), a report built from the arms' own files, budgets enforced, and a
report.html whose images all exist (rendered in headless Chromium when it is installed)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
from html.parser import HTMLParser

import pytest
import yaml
from _tiny_compare import TESTS, method, tiny_compare

from lightning_gancomp.commands.compare import compare_main, run_comparison
from lightning_gancomp.compare.report import write_report
from lightning_gancomp.compare.results import budget_tables
from lightning_gancomp.compare.spec import load_spec

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(TESTS)
#: columns that differ between two identical runs (wall-clock time)
TIMED_COLUMNS = ("train time", "CPU ms/batch", "GPU ms/batch")


def snapshot(folder: str) -> dict[str, tuple[int, str]]:
    """Every file under ``folder``: (mtime in ns, sha256)."""
    files = {}
    for root, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(root, name)
            with open(path, "rb") as handle:
                files[path] = (os.stat(path).st_mtime_ns, hashlib.sha256(handle.read()).hexdigest())
    return files


def report_numbers(config: str) -> list[list[str]]:
    """The report's table cells without the wall-clock columns."""
    from lightning_gancomp.compare.report import table_rows

    teacher, tables = budget_tables(load_spec(config))
    rows = [r for t in tables for r in table_rows(t, teacher)]
    keep = [i for i, title in enumerate(rows[0]) if title not in TIMED_COLUMNS]
    return [[row[i] for i in keep] for row in rows]


def kill_probe(marker: str) -> list[str]:
    return [
        "--trainer.callbacks+=_compare_probe.KillOnce",
        f"--trainer.callbacks.marker={marker}",
        "--trainer.callbacks.batch=3",
    ]


@pytest.fixture(scope="module")
def finished(tmp_path_factory):
    """One finished comparison (one method, one seed) and its report."""
    folder = str(tmp_path_factory.mktemp("finished"))
    config = tiny_compare(folder, {"l1": method("l1")})
    compare_main(["-c", config])
    return config


@pytest.mark.slow
def test_killed_comparison_resumes_and_reports_as_uninterrupted(tmp_path):
    reference_marker = tmp_path / "reference.marker"
    reference_marker.touch()  # the reference run carries the same callback, which never fires
    reference = tiny_compare(
        str(tmp_path / "reference"),
        {"l1": method("l1"), "random": method("random", kill_probe(str(reference_marker)))},
    )
    compare_main(["-c", reference])

    marker = str(tmp_path / "killed.marker")
    config = tiny_compare(
        str(tmp_path / "cut"), {"l1": method("l1"), "random": method("random", kill_probe(marker))}
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([HERE, REPO, os.environ.get("PYTHONPATH", "")])}
    killed = subprocess.run(
        [sys.executable, "-m", "lightning_gancomp.cli", "compare", "-c", config],
        env=env, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert killed.returncode == -signal.SIGKILL, killed.stderr[-2000:]
    out = tmp_path / "cut" / "out" / "half"
    assert (out / "l1" / "seed0" / "DONE").is_file()
    assert not (out / "random" / "seed0" / "DONE").exists()
    assert (out / "random" / "seed0" / "checkpoints" / "last.ckpt").is_file()  # written at batch 2
    finished_arm = snapshot(str(out / "l1"))

    compare_main(["-c", config])

    assert snapshot(str(out / "l1")) == finished_arm  # the finished arm was not rerun
    with open(out / "random" / "seed0" / "fit_attempts.jsonl") as handle:
        sessions = [json.loads(line) for line in handle]
    assert len(sessions) == 2
    assert "--ckpt_path=" in sessions[1]["command"] and sessions[1]["resumed_from_mtime"] is not None
    assert report_numbers(config) == report_numbers(reference)


def test_adding_a_method_runs_only_the_new_arm(tmp_path):
    config = tiny_compare(str(tmp_path), {"l1": method("l1")})
    first = run_comparison(load_spec(config), log=lambda _: None)
    assert [a.name for a in first] == ["teacher/teacher/seed0", "half/l1/seed0"]
    before = snapshot(str(tmp_path / "out" / "half" / "l1"))

    with open(config) as handle:
        spec = yaml.safe_load(handle)
    spec["methods"]["random"] = method("random")
    with open(config, "w") as handle:
        yaml.safe_dump(spec, handle)
    second = run_comparison(load_spec(config), log=lambda _: None)

    assert [a.name for a in second] == ["half/random/seed0"]
    assert snapshot(str(tmp_path / "out" / "half" / "l1")) == before


def test_report_numbers_come_from_the_arms_metric_files(finished):
    spec = load_spec(finished)
    report = os.path.join(spec.output_dir, "report.md")
    metrics = os.path.join(spec.output_dir, "half", "l1", "seed0", "metrics.json")
    with open(metrics) as handle:
        result = json.load(handle)
    with open(report) as handle:
        assert f"{result['test']['fid']:.4g}" in handle.read()

    result["test"]["fid"] = 123.456
    result["params"] = 777
    with open(metrics, "w") as handle:
        json.dump(result, handle)
    write_report(spec)
    with open(report) as handle:
        text = handle.read()
    row = next(line for line in text.splitlines() if line.startswith("| l1 "))
    assert "123.5" in row and "| 777 |" in row


def test_arm_over_budget_is_refused_with_one_line(tmp_path, capsys):
    # a method that keeps its own (distillation-quickstart) student widths: 32/48 of the teacher's,
    # 1.8x the MACs of the 0.5-ratio budget
    own_student = {**method("l1"), "prune": False}
    own_student["overrides"] = [
        "--model.init_args.student.init_args.channels=[32,32,32,32,32,32,16,16]",
    ]
    config = tiny_compare(str(tmp_path), {"own": own_student})
    with pytest.raises(SystemExit) as exit_info:
        compare_main(["-c", config])
    assert exit_info.value.code == 1
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1
    assert error[0].startswith("gancomp: error: arm half/own/seed0 refused:")
    assert "over the budget half" in error[0]
    assert not os.path.exists(tmp_path / "out" / "half" / "own" / "seed0" / "DONE")


class ImageSources(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.sources: list[str] = []

    def handle_starttag(self, tag, attrs):
        if tag == "img":
            self.sources.append(dict(attrs)["src"])


def test_report_html_images_exist_and_render(finished, tmp_path):
    spec = load_spec(finished)
    page = os.path.join(spec.output_dir, "report.html")
    parser = ImageSources()
    with open(page, encoding="utf-8") as handle:
        parser.feed(handle.read())
    assert len(parser.sources) >= 3  # FID vs MACs, training curves, samples
    for source in parser.sources:
        if source.startswith("data:image/png;base64,"):
            assert base64.b64decode(source.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
        else:
            assert os.path.isfile(os.path.join(spec.output_dir, source)), source

    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("headless Chromium not installed (apt-get install chromium)")
    shot = str(tmp_path / "report.png")
    subprocess.run(
        [browser, "--headless", "--no-sandbox", "--disable-gpu", f"--screenshot={shot}",
         "--window-size=1200,1600", f"file://{os.path.abspath(page)}"],
        capture_output=True, timeout=120, check=True,
    )  # fmt: skip
    from PIL import Image

    pixels = Image.open(shot).convert("L")
    low, high = pixels.getextrema()
    assert high - low > 100  # the page drew tables and images, not a blank canvas


def test_wandb_gets_the_report_table_and_figures(finished, monkeypatch):
    import dataclasses
    import glob

    from lightning_gancomp.compare.report import table_rows

    monkeypatch.setenv("WANDB_MODE", "offline")
    spec = dataclasses.replace(load_spec(finished), wandb={"mode": "offline", "project": "test"})
    write_report(spec)
    run = sorted(glob.glob(os.path.join(spec.output_dir, "wandb", "offline-run-*")))[-1]
    (table_file,) = glob.glob(os.path.join(run, "files", "media", "table", "compare", "half_*.table.json"))
    with open(table_file) as handle:
        logged = json.load(handle)
    teacher, tables = budget_tables(spec)
    expected = table_rows(tables[0], teacher)
    assert logged["columns"] == expected[0] and logged["data"] == expected[1:]
    images = glob.glob(os.path.join(run, "files", "media", "images", "compare", "*.png"))
    assert len(images) == 3  # FID vs MACs, training curves, samples (latency is off in the tiny run)
