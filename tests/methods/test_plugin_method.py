"""A new method written against the engine's hooks only (not shipped): a learnable channel gate
on the ResNet generator's stem, sparsified by a proximal step and materialised by the pruning
surgery. It proves that a method plugs in with one file: forward hook, after-step hook, a loss
context extra read by a loss term, and materialise."""

import pytorch_lightning as pl
import torch
from torch import nn

from lightning_gancomp.checkpoints import load_generator
from lightning_gancomp.data import PairedDataModule
from lightning_gancomp.losses import LossTerm, PixelLoss
from lightning_gancomp.methods import CompressionModule
from lightning_gancomp.nets.contract import probe_inputs, run_generator
from lightning_gancomp.nets.pix2pix import NLayerDiscriminator, ResnetGenerator
from lightning_gancomp.pruning.plan import plan_from_keep
from lightning_gancomp.pruning.surgery import apply_plan


class GateL1(LossTerm):
    requires = ("gate",)
    default_name = "gate_l1"

    def forward(self, ctx):
        return self.fetch(ctx, "gate").abs().sum()


class GatedStem(CompressionModule):
    """Binary gates (straight-through) on the ``stem`` channel group, soft-thresholded after each G step."""

    def __init__(self, shrink: float = 0.05, **kwargs):
        super().__init__(**kwargs)
        self.gate = nn.Parameter(torch.linspace(-0.2, 1.0, self.generator.config["ngf"]))
        self.shrink = shrink

    def mask(self):
        hard = (self.gate > 0).float()
        return hard + self.gate - self.gate.detach()  # straight-through estimator

    def run_student(self, net, inputs, w_plus=None):
        hook = net.stem.register_forward_hook(lambda _m, _a, out: out * self.mask()[None, :, None, None])
        try:
            return run_generator(net, inputs)
        finally:
            hook.remove()

    def generator_parameters(self):
        return [*super().generator_parameters(), self.gate]

    def after_optimizer_step(self, phase):
        if phase.name == "G main":
            with torch.no_grad():
                self.gate.copy_(self.gate.sign() * (self.gate.abs() - self.shrink).clamp_min(0))

    def loss_context_extras(self, ctx, batch, inputs, needs):
        return {"gate": self.gate} if "gate" in needs else {}

    def materialise(self):
        keep = {"stem": tuple(int(i) for i in torch.nonzero(self.gate > 0).flatten())}
        plan = plan_from_keep(self.eval_generator(), keep)
        return apply_plan(self.eval_generator().cpu(), plan)


def test_a_method_plugs_into_the_engine_through_its_hooks(tmp_path):
    torch.manual_seed(0)
    module = GatedStem(
        student=ResnetGenerator(ngf=8, n_blocks=1, norm="instance"),
        discriminator=NLayerDiscriminator(in_channels=6, ndf=8, n_layers=2),
        pair_discriminator=True,
        losses=[PixelLoss(10.0, target="real_img"), GateL1(0.1)],
        ema_decay=None,
        style_mixing_prob=0.0,
    )
    data = PairedDataModule(path="embedded", resolution=32, batch_size=2, val_size=4, embedded_length=16)
    trainer = pl.Trainer(
        max_steps=-1, max_epochs=1, limit_train_batches=4, limit_val_batches=0, logger=False,
        enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
        accelerator="cpu", default_root_dir=str(tmp_path),
    )  # fmt: skip
    trainer.fit(module, datamodule=data)
    assert float(trainer.logged_metrics["train/g/gate_l1"]) > 0  # the extra reached the loss term
    kept = int((module.gate > 0).sum())
    assert 0 < kept < 8  # the initially negative gates stay closed, the proximal step shrank the rest
    student = load_generator(str(tmp_path / "student.pt")).eval()  # written by the engine at fit end
    assert student.stem.conv.out_channels == kept and type(student) is ResnetGenerator
    inputs = probe_inputs(student, batch_size=2, resolution=32)
    with torch.no_grad():
        expected = module.run_student(module.generator.eval(), inputs)
        torch.testing.assert_close(run_generator(student, inputs), expected, atol=1e-5, rtol=0)
