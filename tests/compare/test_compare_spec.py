"""Comparison config checks (one line naming the key), budget resolution on a real net, and the
report's statistics (mean ± std, best, within-noise marks) on hand-made arm results."""

from __future__ import annotations

import os

import pytest
import yaml

from lightning_gancomp.compare.compose import mac_counter, resolve_budget
from lightning_gancomp.compare.results import Column, MethodRow, Summary, mark_best, summarise, within_noise
from lightning_gancomp.compare.spec import Budget, CompareConfigError, load_spec
from lightning_gancomp.nets.stylegan2 import StyleGAN2Generator

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MINIMAL = {
    "teacher": {"path": "teacher.ckpt"},
    "budgets": [{"removal_ratio": 0.5}],
    "methods": {"l1": {"config": "configs/distill/stylegan2_embedded.yaml"}},
}


def write(tmp_path, config) -> str:
    path = str(tmp_path / "cmp.yaml")
    with open(path, "w") as handle:
        yaml.safe_dump(config, handle)
    return path


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"seedz": [0]}, "cmp.yaml: seedz: unknown key"),
        ({"budgets": [{"removal_ratio": 0.5, "macs": 3}]}, "budgets[0]: give exactly one of"),
        ({"budgets": [{"mac_fraction": 1.5}]}, "budgets[0].mac_fraction: must be in (0, 1]"),
        ({"budgets": [{"macs": 5, "convention": "flops"}]}, "budgets[0].convention: must be 'cagan' or"),
        ({"seeds": [0, "1"]}, "seeds: must be a non-empty list of integers"),
        ({"methods": {"a b": {"config": "x.yaml"}}}, "name 'a b' must be letters"),
        ({"methods": {"l1": {"overrides": []}}}, "methods.l1.config: is required"),
        ({"protocol": {"latency": {"repeat": 3}}}, "protocol.latency.repeat: unknown key"),
        ({"tolerance": 1.5}, "tolerance: must be in [0, 1)"),
        ({"protocol": {"metrics": "nope.yaml"}}, "nope.yaml: no such file"),
        ({"protocol": {"metrics": 3}}, "protocol.metrics: must be a mapping or a string"),
    ],
)
def test_bad_comparison_config_is_one_line_naming_the_key(tmp_path, change, message):
    with pytest.raises(CompareConfigError) as error:
        load_spec(write(tmp_path, {**MINIMAL, **change}))
    assert message in str(error.value)
    assert "\n" not in str(error.value)


def test_defaults_and_budget_names(tmp_path):
    spec = load_spec(write(tmp_path, MINIMAL))
    assert (
        spec.seeds == (0,)
        and spec.tolerance == 0.05
        and spec.output_dir == os.path.join("runs", "compare", "cmp")
    )
    assert spec.budgets[0] == Budget("removal_ratio_0.5", "removal_ratio", 0.5, "cagan")


def test_protocol_metrics_may_name_a_piece_relative_to_the_comparison_config(tmp_path):
    """``protocol.metrics: ../metrics/<piece>.yaml`` as jsonargparse resolves a sub-config path."""
    (tmp_path / "metrics").mkdir()
    piece = {"class_path": "lightning_gancomp.metrics.GenerativeMetrics", "init_args": {"metrics": ["fid"]}}
    (tmp_path / "metrics" / "fid.yaml").write_text("# a protocol piece\n" + yaml.safe_dump(piece))
    (tmp_path / "compare").mkdir()
    spec = load_spec(write(tmp_path / "compare", {**MINIMAL, "protocol": {"metrics": "../metrics/fid.yaml"}}))
    assert spec.protocol.metrics == piece
    (tmp_path / "metrics" / "list.yaml").write_text("[fid]\n")
    with pytest.raises(CompareConfigError, match="list.yaml: must hold a mapping with class_path$"):
        load_spec(write(tmp_path / "compare", {**MINIMAL, "protocol": {"metrics": "../metrics/list.yaml"}}))


def test_every_shipped_comparison_config_reads():
    folder = os.path.join(REPO, "configs", "compare")
    names = sorted(f for f in os.listdir(folder) if f.endswith(".yaml"))
    assert "stylegan2_embedded.yaml" in names
    for name in names:
        spec = load_spec(os.path.join(folder, name))
        for method in spec.methods:
            assert all(os.path.isfile(os.path.join(REPO, c)) for c in method.configs), (name, method.name)


def test_budgets_resolve_to_the_uniform_ratio_that_meets_them():
    teacher = StyleGAN2Generator(resolution=32, z_dim=16, w_dim=16, n_mapping=1, channels=[32] * 6 + [16, 16])
    count = mac_counter("cagan")
    by_ratio = resolve_budget(teacher, Budget("r", "removal_ratio", 0.5, "cagan"))
    assert by_ratio.ratio == 0.5 and by_ratio.teacher_macs == count(teacher)
    half = StyleGAN2Generator(resolution=32, z_dim=16, w_dim=16, n_mapping=1, channels=[16] * 6 + [8, 8])
    assert by_ratio.target_macs == count(half)  # int(32·0.5) = 16 channels kept per group

    by_fraction = resolve_budget(teacher, Budget("f", "mac_fraction", 0.25, "cagan"))
    assert by_fraction.target_macs == int(0.25 * count(teacher))
    assert 0.0 < by_fraction.ratio < 1.0


def rows_of(values: dict[str, list[float]]) -> list[MethodRow]:
    rows = [
        MethodRow(name, name, [{"seed": i, "test": {"fid": v}} for i, v in enumerate(vs)])
        for name, vs in values.items()
    ]
    for row in rows:
        summarise(row, [Column("test.fid", "FID", "lower")])
    return rows


def test_best_and_within_noise_marks_follow_the_standard_error():
    # a: 10 ± 1 (3 seeds), b: 11 ± 1 → |Δ| 1 ≤ 2·sqrt(1/3 + 1/3) = 1.63: within noise
    # c: 20 ± 1 → far beyond the noise
    rows = rows_of({"a": [9.0, 10.0, 11.0], "b": [10.0, 11.0, 12.0], "c": [19.0, 20.0, 21.0]})
    mark_best(rows, [Column("test.fid", "FID", "lower")])
    a, b, c = rows
    assert a.best == {"test.fid"} and b.within_noise == {"test.fid"} and c.within_noise == set()
    assert a.summaries["test.fid"].mean == 10.0 and a.summaries["test.fid"].std == 1.0


def test_one_seed_has_no_noise_estimate():
    assert not within_noise(Summary([1.0]), Summary([1.0, 1.1]))
    assert within_noise(Summary([1.0, 1.2]), Summary([1.1, 1.3]))


def test_horse2zebra_method_config_parses_with_the_cli():
    from lightning_gancomp.compare.compose import printed_config

    config = printed_config(
        [os.path.join(REPO, "configs", "compare", "methods", "horse2zebra_distill.yaml")], [], "h2z"
    )
    args = config["model"]["init_args"]
    assert config["model"]["class_path"] == "lightning_gancomp.methods.CompressionModule"
    assert args["teacher"]["init_args"]["n_blocks"] == 9 and args["adversarial"]["class_path"].endswith(
        "LSGANLoss"
    )
    assert [loss["init_args"]["weight"] for loss in args["losses"]] == [10.0, 0.01]


def test_a_method_config_that_does_not_parse_is_one_line_naming_the_method(tmp_path):
    from lightning_gancomp.compare.compose import arms_of, compose_arm

    config = {
        **MINIMAL,
        "methods": {"l1": {"config": os.path.join(REPO, "configs/distill/stylegan2_embedded.yaml")}},
    }
    config["methods"]["l1"]["overrides"] = ["--model.init_args.no_such_argument=1"]
    spec = load_spec(write(tmp_path, config))
    with pytest.raises(CompareConfigError) as error:
        compose_arm(spec, spec.methods[0], arms_of(spec)[0], 0.5)
    message = str(error.value)
    assert message.startswith(f"{spec.source}: methods.l1: ") and "no_such_argument" in message
    assert "\n" not in message
