"""CoroNetGAN methods: search to a MAC target on embedded data, materialise, fine-tune; checkpoints,
optimizer swap, feature-KD adaptors, CycleGAN with both generators searched."""

from __future__ import annotations

import pytest
import torch
from _tiny import quiet_trainer

from lightning_gancomp.checkpoints import load_generator
from lightning_gancomp.data import PairedDataModule, UnpairedDataModule
from lightning_gancomp.losses import FeatureDistillation, PixelLoss
from lightning_gancomp.methods import CoroNetCycleGanModule, CoroNetModule, LinearDecayLR
from lightning_gancomp.metrics.complexity import torchprofile_macs
from lightning_gancomp.nets.contract import GeneratorInputs
from lightning_gancomp.nets.pix2pix import NLayerDiscriminator, ResnetGenerator, UnetGenerator
from lightning_gancomp.pruning.hyper import HyperGenerator

RES = 32


def paired_data(length: int = 32) -> PairedDataModule:
    return PairedDataModule(path="embedded", resolution=RES, batch_size=4, val_size=4, embedded_length=length)


def pix2pix_module(target_ratio: float = 0.5, unet: bool = False, **kwargs) -> CoroNetModule:
    torch.manual_seed(0)
    student = UnetGenerator(num_downs=5, ngf=4) if unet else ResnetGenerator(ngf=6, n_blocks=2)
    kwargs.setdefault("sparsity", 400.0)
    return CoroNetModule(
        student=student,
        discriminator=NLayerDiscriminator(6, ndf=4, n_layers=2),
        target_ratio=target_ratio,
        check_every=1,
        mac_resolution=RES,
        **kwargs,
    )


def assert_target_met(module, name: str = "generator", resolution: int = RES) -> None:
    search = module.searches[name]
    student = getattr(module, name)
    measured = torchprofile_macs(student, torch.randn(1, 3, resolution, resolution))
    assert abs(measured - search.goal) <= 0.05 * search.goal, (measured, search.goal)
    assert measured < search.full_macs


@pytest.mark.parametrize("ratio", [0.5, 0.25])
def test_pix2pix_reaches_half_and_quarter_of_the_teacher_macs_and_fine_tunes(ratio, tmp_path):
    module = pix2pix_module(ratio)
    trainer = quiet_trainer(max_epochs=2, default_root_dir=tmp_path)
    trainer.fit(module, paired_data())
    assert module.stage == "finetune" and not module.hypers
    assert type(module.generator) is ResnetGenerator
    assert_target_met(module)
    assert module.searches["generator"].reached and module.searches["generator"].steps < module.batches_done
    saved = load_generator(tmp_path / "student.pt")
    assert saved.config == module.generator.config
    logged = trainer.callback_metrics
    assert logged["coronet/generator/target_macs"] == module.searches["generator"].goal
    assert "coronet/generator/kept/residual" in logged and logged["coronet/finetune"] == 1.0


def test_unet_search_reaches_the_target(tmp_path):
    module = pix2pix_module(0.5, unet=True, sparsity=600.0)
    quiet_trainer(max_epochs=2, default_root_dir=tmp_path).fit(module, paired_data())
    assert module.stage == "finetune" and type(module.generator) is UnetGenerator
    assert_target_met(module)


def test_student_runs_through_the_hypernetwork_then_the_plain_net(tmp_path):
    module = pix2pix_module(0.5)
    hyper = module.hypers["generator"]
    inputs = GeneratorInputs(batch_size=2, input_img=torch.randn(2, 3, RES, RES))
    with torch.no_grad():
        hyper.latent("residual")[:5] = 0.0  # prune a few stream channels
        hyper.net.eval()
        expected = hyper(inputs.input_img)
    assert torch.allclose(module.generate(inputs, "generator"), expected)
    plain = hyper.materialise().eval()
    with torch.no_grad():
        assert torch.allclose(plain(inputs.input_img), expected, atol=1e-5)
    ids = {id(p) for p in module.generator_parameters()}
    assert id(hyper.latent("residual")) in ids and id(module.generator.stem.conv.weight) not in ids
    module.switch_to_finetune()  # outside a Trainer: no optimizer to swap
    assert module.stage == "finetune" and module.generator.down_channels[2] == plain.down_channels[2]
    assert torch.allclose(module.generate(inputs, "generator"), expected, atol=1e-5)
    assert {id(p) for p in module.generator_parameters()} == {id(p) for p in module.generator.parameters()}


def test_switch_swaps_the_g_optimizer_and_continues_its_schedule(tmp_path):
    schedule = LinearDecayLR(optimizer="g", constant=0, decay=100, offset=0, interval="step")
    module = pix2pix_module(0.5, schedules=[schedule])
    trainer = quiet_trainer(max_epochs=1, default_root_dir=tmp_path)
    trainer.fit(module, paired_data())
    g_opt = module.named_optimizer("g").optimizer
    params = {id(p) for group in g_opt.param_groups for p in group["params"]}
    assert params == {id(p) for p in module.generator.parameters()}
    assert g_opt.param_groups[0]["lr"] == pytest.approx(2e-4 * (1 - module.batches_done / 100))
    assert g_opt.state  # the fresh optimizer has taken fine-tune steps


def test_finetune_checkpoint_resumes_and_exports_the_plain_student(tmp_path):
    module = pix2pix_module(0.5)
    trainer = quiet_trainer(max_epochs=1, default_root_dir=tmp_path)
    trainer.fit(module, paired_data())
    ckpt = tmp_path / "finetune.ckpt"
    trainer.save_checkpoint(ckpt)
    assert load_generator(ckpt).config == module.generator.config
    fresh = pix2pix_module(0.5)  # a new run of the same config is in the search stage
    payload = torch.load(ckpt, map_location="cpu", weights_only=True)
    fresh.check_checkpoint_fits(payload["state_dict"], str(ckpt))
    fresh.load_state_dict(payload["state_dict"])
    assert fresh.stage == "finetune" and fresh.generator.config == module.generator.config
    x = torch.randn(1, 3, RES, RES)
    with torch.no_grad():
        assert torch.equal(fresh.materialise().eval()(x), module.generator.eval()(x))
    resumed = pix2pix_module(0.5)
    quiet_trainer(max_epochs=2, default_root_dir=tmp_path).fit(resumed, paired_data(), ckpt_path=ckpt)
    assert resumed.stage == "finetune" and resumed.batches_done == 2 * module.batches_done


def test_feature_distillation_adaptors_follow_the_kept_channels(tmp_path):
    torch.manual_seed(0)
    teacher = ResnetGenerator(ngf=6, n_blocks=2)
    kd = FeatureDistillation(weight=1.0, points=[0, 3])  # stem, blocks.0 (the residual stream)
    module = pix2pix_module(
        0.5, teacher=teacher, losses=[PixelLoss(100.0, target="real_img"), PixelLoss(1.0), kd]
    )
    before = [a.weight.detach().clone() for a in kd.adaptors]
    plans = module.search_plans()
    quiet_trainer(max_epochs=1, default_root_dir=tmp_path).fit(module, paired_data())
    assert module.stage == "finetune"
    kept = [module.generator.down_channels[0], module.generator.down_channels[2]]
    assert [a.weight.shape[1] for a in kd.adaptors] == kept
    assert before[0].shape[1] == 6 and plans  # full width before the switch


def test_cyclegan_searches_both_generators_to_the_target(tmp_path):
    torch.manual_seed(0)
    module = CoroNetCycleGanModule(
        student=ResnetGenerator(ngf=8, n_blocks=1),
        generator_ba=ResnetGenerator(ngf=8, n_blocks=1),
        discriminator=NLayerDiscriminator(3, ndf=4, n_layers=1, norm="instance"),
        discriminator_a=NLayerDiscriminator(3, ndf=4, n_layers=1, norm="instance"),
        target_ratio=0.5,  # 0.25 is finer than one channel of nets this small allows (see pix2pix test)
        sparsity=600.0,
        check_every=1,
        mac_resolution=16,
    )
    assert set(module.hypers) == {"generator", "generator_ba"}
    assert all(isinstance(h, HyperGenerator) for h in module.hypers.values())
    data = UnpairedDataModule(path="embedded", resolution=16, batch_size=2, val_size=2, embedded_length=32)
    trainer = quiet_trainer(max_epochs=1, default_root_dir=tmp_path)
    trainer.fit(module, data)
    assert module.stage == "finetune", {n: s.summary() for n, s in module.searches.items()}
    assert_target_met(module, "generator", 16)
    assert_target_met(module, "generator_ba", 16)
    assert load_generator(tmp_path / "student_ba.pt").config == module.generator_ba.config
    for key in ("train/g/cycle_a", "train/g/identity_b", "train/d/adv_a"):
        assert torch.isfinite(trainer.callback_metrics[key]), key
