"""Sampling and evaluation of the engine: sample grids, validation/test metrics, predict, and the
model sizes logged at the start of training.

Mixed into :class:`~lightning_gancomp.methods.engine.AdversarialModule`; generated images come
from ``run_student`` (the trained generator or its EMA, as the method runs it) or the plain
forward for other networks (the teacher). Validation/test feed real and generated images to a
metrics object kept out of the module tree (Inception or other feature nets never land in
checkpoints); the same latents are drawn at every evaluation and training's RNG is untouched.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

import torch
from torch import Tensor, nn

from lightning_gancomp.nets.contract import GeneratorInputs, run_generator

NetName = Literal["ema", "generator", "teacher"]


def _row_length(count: int) -> int:
    root = int(count**0.5)
    return root if root * root == count else min(count, 8)


class EvaluationMixin:
    """Sampling, grids, validation/test/predict steps (see the module docstring)."""

    # -- sampling ------------------------------------------------------------------------------
    @torch.no_grad()
    def generate(self, inputs: GeneratorInputs, net: NetName = "ema") -> Tensor:
        """Images ``[B, 3, H, W]`` (unclamped) from the chosen network in eval mode."""
        module = self.network(net)
        was_training = module.training
        module.eval()
        try:
            if net == "teacher":
                return run_generator(module, inputs)
            return self.run_student(module, inputs)
        finally:
            module.train(was_training)

    def network(self, net: NetName) -> nn.Module:
        if net == "ema":
            return self.eval_generator()
        if net == "generator":
            return self.generator
        raise ValueError(f"{type(self).__name__} has no {net!r} network")

    def fixed_grid_inputs(self, batch: Mapping[str, Tensor] | None = None) -> GeneratorInputs:
        """Fixed inputs for sample grids: seeded latents (labels cycling through classes) or the
        first images of a batch for image-to-image."""
        size = self.grid_size
        if self.task == "image2image":
            assert batch is not None
            inputs = batch["input_img"][:size].detach()
            return GeneratorInputs(batch_size=inputs.shape[0], input_img=inputs)
        rng = torch.Generator().manual_seed(1234)
        inputs = self.sample_inputs(size, generator=rng)
        if self.task == "conditional":
            inputs.label = torch.arange(size, device=self.device) % int(self.generator.num_classes)
        return inputs

    def grid_images(self) -> tuple[Tensor, int]:
        """(images ``[N, 3, H, W]`` clamped to [-1, 1], images per row) for a sample grid."""
        inputs = (self._grid_inputs or self.fixed_grid_inputs()).to(self.device)
        images = self.generate(inputs, "ema")
        if inputs.input_img is not None and inputs.input_img.shape[1] == images.shape[1]:
            # image-to-image grids show input | output pairs
            images = torch.stack([inputs.input_img, images], dim=1).flatten(0, 1)
            return images.clamp(-1, 1), 2
        return images.clamp(-1, 1), _row_length(images.shape[0])

    # -- evaluation ------------------------------------------------------------------------------
    def on_validation_epoch_start(self) -> None:
        self._start_evaluation()

    def on_test_epoch_start(self) -> None:
        self._start_evaluation()

    def _start_evaluation(self) -> None:
        # Same latents at every evaluation, and no effect on what training draws next.
        self.reseed(-2, self.batches_done)
        self._eval_images_seen = 0
        if self.metrics is not None:
            self.metrics.to(self.device)
            self.metrics.reset()

    def validation_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self.evaluation_step(batch)

    def test_step(self, batch: dict[str, Tensor], batch_idx: int) -> None:
        self.evaluation_step(batch)

    def evaluation_step(self, batch: Mapping[str, Tensor]) -> None:
        """Feed the batch's real images and as many generated ones to the metrics."""
        if self.metrics is None:
            return
        if self.eval_max_images is not None and self._eval_images_seen >= self.eval_max_images:
            return
        self._eval_images_seen += self.feed_metrics(batch)

    @torch.no_grad()
    def feed_metrics(self, batch: Mapping[str, Tensor]) -> int:
        """Real images of ``batch`` and class-/input-matched generated images (G-EMA) into the
        metrics; returns the number of real images."""
        assert self.metrics is not None
        real_img = batch["real_img"]
        inputs = self.sample_inputs(real_img.shape[0], batch)
        if self.task == "conditional" and "label" in batch:
            inputs.label = batch["label"]  # class-matched fakes
        fake_img = self.generate(inputs, "ema").clamp(-1, 1)
        if self.metrics.needs_real_images:  # real statistics may be cached
            self.metrics.update(real_img, real=True)
        self.metrics.update(fake_img, real=False)
        return int(real_img.shape[0])

    @torch.no_grad()
    def evaluate_loader(self, loader: Any, max_images: int | None = None) -> dict[str, float]:
        """Metrics over a dataloader's real images (at most ``max_images``) outside the
        validation loop (``callbacks.PeriodicEvaluation``, scripts)."""
        if self.metrics is None:
            return {}
        self.metrics.to(self.device)
        self.metrics.reset()
        seen = 0
        for batch in loader:
            batch = {k: v.to(self.device) if isinstance(v, Tensor) else v for k, v in batch.items()}
            seen += self.feed_metrics(batch)
            if max_images is not None and seen >= max_images:
                break
        results = {k: float(v) for k, v in self.metrics.compute().items()}
        self.metrics.reset()
        return results

    def on_validation_epoch_end(self) -> None:
        self._finish_evaluation("val")

    def on_test_epoch_end(self) -> None:
        self._finish_evaluation("test")

    def _finish_evaluation(self, prefix: str) -> None:
        if self.metrics is None or self._eval_images_seen == 0:
            return
        results = self.metrics.compute()
        for name, value in results.items():
            self.log(f"{prefix}/{name}", float(value), prog_bar=name == "fid", sync_dist=False)
        self.metrics.reset()

    def predict_step(self, batch: dict[str, Tensor], batch_idx: int) -> Tensor:
        """Generated images in [-1, 1] for a predict batch (its size, labels or inputs); latents
        are seeded by the batch index, so repeated predictions give the same images."""
        self.reseed(-3, batch_idx)
        reference = batch.get("real_img", batch.get("input_img"))
        inputs = self.sample_inputs(reference.shape[0], batch)
        if self.task == "conditional" and "label" in batch:
            inputs.label = batch["label"]
        return self.generate(inputs, "ema").clamp(-1, 1)

    # -- sizes ---------------------------------------------------------------------------------
    def profile_networks(self) -> dict[str, nn.Module]:
        """Generators ``gancomp profile`` measures, by display name."""
        return {"generator": self.eval_generator()}

    def on_train_start(self) -> None:
        """Log ``model/<name>_params`` and ``model/<name>_macs`` of the generators once."""
        if self.trainer.is_global_zero and self.loggers:
            sizes = self.model_complexity()
            for logger in self.loggers:
                logger.log_metrics(sizes, step=0)

    def model_complexity(self) -> dict[str, float]:
        from lightning_gancomp.metrics.complexity import count_parameters, default_macs

        sizes: dict[str, float] = {}
        for name, net in self.profile_networks().items():
            sizes[f"model/{name}_params"] = float(count_parameters(net))
            sizes[f"model/{name}_macs"] = float(default_macs(net)[0])
        return sizes
