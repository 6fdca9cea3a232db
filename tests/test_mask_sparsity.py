"""Mask-sparsity logging callback: statistics on hand-set masks, history and JSON file."""

import json
import types

import pytest
import torch

from lightning_gancomp.callbacks import MaskSparsityLogger
from lightning_gancomp.callbacks.mask_sparsity import mask_layers, mask_statistics
from lightning_gancomp.nets.masks import LearnableMask


def _generator():
    generator = torch.nn.Module()
    generator.a = LearnableMask(4)
    generator.b = LearnableMask(2)
    with torch.no_grad():
        generator.a.weight.copy_(torch.tensor([-1.0, -1.0, -1.0, 0.0]))  # m = 0, 0, 0, 0.5
    generator.b.set_binary(torch.tensor([0.0, 1.0]))
    return generator


def test_statistics_per_layer_and_overall():
    stats = mask_statistics(mask_layers(_generator()))
    assert stats["a/share"] == pytest.approx(0.75) and stats["a/mean"] == pytest.approx(0.125)
    assert stats["a/frozen"] == 0.0 and stats["b/frozen"] == 1.0 and stats["b/share"] == 0.5
    assert stats["share"] == pytest.approx(4 / 6)


def test_logs_on_interval_and_writes_history(tmp_path):
    callback = MaskSparsityLogger(every_n_batches=2)
    module = types.SimpleNamespace(generator=_generator(), batches_done=1)
    logged = []
    logger = types.SimpleNamespace(log_metrics=lambda metrics, step: logged.append((step, metrics)))
    trainer = types.SimpleNamespace(loggers=[logger], default_root_dir=str(tmp_path), is_global_zero=True)
    callback.on_train_batch_end(trainer, module, None, None, 0)
    module.batches_done = 2
    callback.on_train_batch_end(trainer, module, None, None, 1)
    assert [step for step, _ in logged] == [2] and logged[0][1]["masks/a/share"] == pytest.approx(0.75)
    callback.on_fit_end(trainer, module)
    saved = json.loads((tmp_path / "mask_history.json").read_text())
    assert saved["history"][0]["batch"] == 2 and saved["final_values"]["b"] == [0.0, 1.0]
    with pytest.raises(ValueError):
        MaskSparsityLogger(every_n_batches=0)
