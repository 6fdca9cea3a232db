"""``gancomp test`` on a compression method evaluates the teacher on the student's protocol, caches
it per teacher weights, and leaves the student's numbers unchanged."""

import copy

import pytest
import torch
from _tiny import DictDataModule, quiet_trainer, tiny_discriminator, tiny_stylegan2

from lightning_gancomp.methods import CompressionModule, teacher_eval
from lightning_gancomp.methods.teacher_eval import comparison_lines
from lightning_gancomp.metrics import GenerativeMetrics


def _module(student=None, evaluate_teacher=True):
    torch.manual_seed(0)
    teacher = tiny_stylegan2(8, resolution=32)
    return CompressionModule(
        teacher=teacher,
        student=student if student is not None else copy.deepcopy(teacher),
        discriminator=tiny_discriminator(32),
        metrics=GenerativeMetrics(("fid",), feature_extractor="embedded"),
        evaluate_teacher=evaluate_teacher,
    )


def _test(module):
    trainer = quiet_trainer(limit_test_batches=2)
    trainer.test(module, dataloaders=DictDataModule(resolution=32).val_dataloader())
    return {k: float(v) for k, v in trainer.callback_metrics.items()}


def test_teacher_is_evaluated_on_the_same_protocol_and_cached(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(teacher_eval, "DEFAULT_CACHE_DIR", str(tmp_path))
    first = _test(_module())
    # student = copy of the teacher (zero-initialised noise strengths): same images, same numbers
    assert first["test/teacher_fid"] == pytest.approx(first["test/fid"], rel=1e-6)
    assert "teacher" in capsys.readouterr().out
    assert len(list(tmp_path.glob("*.json"))) == 1
    student = tiny_stylegan2(4, resolution=32)
    again = _module(student=student)
    second = _test(again)
    assert second["test/teacher_fid"] == first["test/teacher_fid"]  # from the cache
    assert again._teacher_eval.metrics.num_fake_images == 0  # no teacher images were generated
    alone = _test(_module(student=copy.deepcopy(student), evaluate_teacher=False))
    assert alone["test/fid"] == second["test/fid"] and "test/teacher_fid" not in alone


def test_comparison_says_who_wins_and_by_how_much():
    lines = comparison_lines(
        {"fid": 20.0, "is": 3.0},
        {"fid": 18.0, "is": 2.5},
        64,
        {"teacher_params": 10.0, "student_params": 2.0},
    )
    text = "\n".join(lines)
    assert "params 5.00x smaller" in text
    assert "beats its teacher on fid by 2 on 64 samples" in text and "on is" not in text


def test_cache_key_follows_the_test_images_and_the_metric_settings(tmp_path, monkeypatch):
    """Two batches of 4 and two batches of 2 are not the same protocol, nor are other KID subsets:
    each gets its own teacher result instead of reusing a stale one."""
    monkeypatch.setattr(teacher_eval, "DEFAULT_CACHE_DIR", str(tmp_path))
    for batch_size, subsets in ((4, 100), (2, 100), (4, 10)):
        module = _module()
        module.metrics.kid_subsets = subsets
        loader = DictDataModule(resolution=32, batch_size=batch_size).val_dataloader()
        quiet_trainer(limit_test_batches=2).test(module, dataloaders=loader)
        assert module._teacher_eval.metrics.num_fake_images == 2 * batch_size  # evaluated, not cached
    assert len(list(tmp_path.glob("*.json"))) == 3


def test_test_after_validation_in_one_process_scores_against_the_test_images(tmp_path, monkeypatch):
    """Real statistics are kept between evaluations of one split only: a ``validate`` then a
    ``test`` (``trainer.fit`` then ``trainer.test`` in one script) must score against the test
    images, as a fresh module does, not against the validation images."""
    monkeypatch.setattr(teacher_eval, "DEFAULT_CACHE_DIR", str(tmp_path))
    val_loader = DictDataModule(resolution=32).val_dataloader()
    other = torch.utils.data.Subset(DictDataModule(length=16, resolution=32).train_set, range(8, 16))
    test_loader = torch.utils.data.DataLoader(other, batch_size=4)  # other real images than validation's
    fresh = _module(evaluate_teacher=False)
    quiet_trainer(limit_test_batches=2).test(fresh, dataloaders=test_loader)
    module = _module(evaluate_teacher=False)
    quiet_trainer(limit_val_batches=2).validate(module, dataloaders=val_loader)
    after_validation = module.metrics.fid.real_features_sum.clone()
    quiet_trainer(limit_test_batches=2).test(module, dataloaders=test_loader)
    real_sum = module.metrics.fid.real_features_sum
    assert not torch.allclose(real_sum, after_validation)
    assert torch.allclose(real_sum, fresh.metrics.fid.real_features_sum)
