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

    def grid_rows(self) -> list[tuple[str, Tensor]]:
        """Labelled rows of a sample grid, images clamped to [-1, 1] (image-to-image: the inputs
        above the outputs)."""
        inputs = (self._grid_inputs or self.fixed_grid_inputs()).to(self.device)
        rows = [("generated", self.generate(inputs, "ema").clamp(-1, 1))]
        if inputs.input_img is not None:
            rows.insert(0, ("input", inputs.input_img.clamp(-1, 1)))
        return rows

    # -- evaluation ------------------------------------------------------------------------------
    def on_validation_epoch_start(self) -> None:
        self._start_evaluation("val")

    def on_test_epoch_start(self) -> None:
        self._start_evaluation("test")

    def _start_evaluation(self, split: str) -> None:
        # Same latents at every evaluation, and no effect on what training draws next.
        self.reseed(-2, self.batches_done)
        self._eval_images_seen = 0
        if self.metrics is not None:
            self.metrics.to(self.device)
            # real statistics are kept between evaluations of one split only: fit then test in
            # one process must not score the test against the validation images
            if getattr(self, "_real_statistics_split", split) != split:
                self.metrics.reset(real=True)
            else:
                self.metrics.reset()
            self._real_statistics_split = split

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

    def evaluation_inputs(self, batch: Mapping[str, Tensor]) -> GeneratorInputs:
        """Generator inputs matched to a batch of real images (their labels / input images)."""
        inputs = self.sample_inputs(batch["real_img"].shape[0], batch)
        if self.task == "conditional" and "label" in batch:
            inputs.label = batch["label"]  # class-matched fakes
        return inputs

    @torch.no_grad()
    def feed_metrics(
        self, batch: Mapping[str, Tensor], inputs: GeneratorInputs | None = None, net: NetName = "ema",
        metrics: Any = None,
    ) -> int:  # fmt: skip
        """Real images of ``batch`` and class-/input-matched images of ``net`` (G-EMA) into the
        metrics (``self.metrics`` unless given); returns the number of real images."""
        metrics = metrics if metrics is not None else self.metrics
        assert metrics is not None
        inputs = inputs if inputs is not None else self.evaluation_inputs(batch)
        fake_img = self.generate(inputs, net).clamp(-1, 1)
        if metrics.needs_real_images:  # real statistics may be cached
            metrics.update(batch["real_img"], real=True)
        metrics.update(fake_img, real=False)
        return int(batch["real_img"].shape[0])

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

    def _finish_evaluation(self, prefix: str) -> dict[str, float] | None:
        if self.metrics is None or self._eval_images_seen == 0:
            return None
        results = {name: float(value) for name, value in self.metrics.compute().items()}
        for name, value in results.items():
            self.log(f"{prefix}/{name}", value, prog_bar=name == "fid", sync_dist=False)
        self.log_evaluation_protocol(prefix)
        self.metrics.reset()
        return results

    def log_evaluation_protocol(self, prefix: str) -> None:
        """Write what the numbers were measured against (real statistics' source, image counts,
        feature networks and resize; ``GenerativeMetrics.protocol``) to every logger."""
        protocol = getattr(self.metrics, "last_protocol", None)
        if not protocol or self._trainer is None:
            return
        for logger in self.loggers:
            logger.log_hyperparams({f"{prefix}_protocol/{k}": v for k, v in protocol.items()})

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
