"""Plain GAN training from scratch, e.g. the teacher a compression method starts from.

Defaults follow the StyleGAN2 recipe (Karras et al. 2020; rosinality/stylegan2-pytorch
``train.py``, NVlabs/stylegan2-ada-pytorch ``training/loss.py`` ``StyleGAN2Loss``):
non-saturating logistic loss, lazy R1 (γ = 10, every 16 batches), lazy path length regularisation
(weight 2, every 4 batches, batch shrink 2, decay 0.01), style mixing 0.9, Adam(0.002, (0, 0.99))
with the lazy-regularisation correction ``lr·c, β^c`` (``c = k/(k+1)``), G EMA with a 10k-image
half-life. Other families are configured in YAML: SN-GAN/BigGAN with ``HingeLoss`` and no
regularisers, pix2pix with ``pair_discriminator`` + ``PixelLoss(target=real_img, weight=100)``.

The engine (phases, EMA, checkpoints, evaluation, sampling) is :class:`AdversarialModule`; this
class only fixes the recipe defaults so ``configs/teacher/*.yaml`` stay short.
"""

from __future__ import annotations

from pytorch_lightning.cli import OptimizerCallable

from lightning_gancomp.losses import AdversarialLoss, LossTerm, PathLengthPenalty, R1Penalty
from lightning_gancomp.methods.base import STYLEGAN2_EMA_DECAY, AdversarialModule, is_style_based
from lightning_gancomp.metrics import GenerativeMetrics
from lightning_gancomp.nets.base import GanNet


class GanModule(AdversarialModule):
    """Train ``generator`` against ``discriminator`` from scratch.

    Args:
        generator, discriminator: the networks (``class_path`` + widths in YAML).
        r1: R1 penalty; default ``R1Penalty(gamma=10)`` (pass ``null`` to disable, e.g. BigGAN).
        path_length: path length penalty; default ``PathLengthPenalty(2)`` for style-based
            generators, none otherwise (pass ``null`` to disable).
        use_default_regularizers: fill ``r1``/``path_length`` with the StyleGAN2 defaults when
            they are not given; set ``false`` to train without regularisation.
        Other arguments as :class:`~lightning_gancomp.methods.base.AdversarialModule`.
    """

    def __init__(
        self,
        generator: GanNet,
        discriminator: GanNet,
        g_optimizer: OptimizerCallable | None = None,
        d_optimizer: OptimizerCallable | None = None,
        adversarial: AdversarialLoss | None = None,
        losses: list[LossTerm] | None = None,
        r1: R1Penalty | None = None,
        r1_interval: int = 16,
        path_length: PathLengthPenalty | None = None,
        pl_interval: int = 4,
        use_default_regularizers: bool = True,
        style_mixing_prob: float = 0.9,
        ema_decay: float | None = STYLEGAN2_EMA_DECAY,
        lazy_reg_correction: bool = True,
        pair_discriminator: bool = False,
        metrics: GenerativeMetrics | None = None,
        eval_max_images: int | None = None,
        grid_size: int = 16,
        step_seed: int | None = 0,
        check_finite: bool = True,
    ) -> None:
        if use_default_regularizers:
            r1 = r1 if r1 is not None else R1Penalty(gamma=10.0)
            if path_length is None and is_style_based(generator):
                path_length = PathLengthPenalty(weight=2.0)
        super().__init__(
            generator=generator,
            discriminator=discriminator,
            g_optimizer=g_optimizer,
            d_optimizer=d_optimizer,
            adversarial=adversarial,
            losses=losses,
            r1=r1,
            r1_interval=r1_interval,
            path_length=path_length,
            pl_interval=pl_interval,
            style_mixing_prob=style_mixing_prob,
            ema_decay=ema_decay,
            lazy_reg_correction=lazy_reg_correction,
            pair_discriminator=pair_discriminator,
            metrics=metrics,
            eval_max_images=eval_max_images,
            grid_size=grid_size,
            step_seed=step_seed,
            check_finite=check_finite,
        )
