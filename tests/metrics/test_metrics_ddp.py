"""Under DDP every rank feeds its shard and ``compute()`` reports the metric of all samples: two
gloo processes give the same FID/KID/IS/precision/recall as one process on the same images."""

import json
import os

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from lightning_gancomp.metrics import GenerativeMetrics

METRICS = ("fid", "kid", "is", "precision_recall")


def _images(seed: int, count: int, shift: float = 0.0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return (torch.rand(count, 3, 32, 32, generator=gen) * 2 - 1 + shift).clamp(-1, 1)


def _metrics() -> GenerativeMetrics:
    return GenerativeMetrics(METRICS, feature_extractor="embedded", kid_subsets=3, kid_subset_size=8)


def _shards():
    # uneven shards: rank 0 holds 10 reals / 7 fakes, rank 1 holds 14 / 13
    real, fake = _images(0, 24), _images(1, 20, shift=0.3)
    return [(real[:10], fake[:7]), (real[10:], fake[7:])], real, fake


def _rank_main(rank: int, world: int, init_file: str, out_dir: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        metrics = _metrics()
        real, fake = _shards()[0][rank]
        metrics.update(real, real=True)
        metrics.update(fake, real=False)
        results = metrics.compute()
        with open(os.path.join(out_dir, f"rank{rank}.json"), "w") as handle:
            json.dump({**results, "num_real": metrics.num_real_images}, handle)
    finally:
        dist.destroy_process_group()


def test_two_ranks_report_the_single_process_metrics(tmp_path):
    mp.spawn(_rank_main, args=(2, str(tmp_path / "init"), str(tmp_path)), nprocs=2, join=True)
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    single = _metrics()
    _, real, fake = _shards()
    single.update(real, real=True)
    single.update(fake, real=False)
    expected = single.compute()
    for result in ranks:
        assert result["num_real"] == 24
        for key, value in expected.items():
            assert abs(result[key] - value) <= 1e-6 * max(1.0, abs(value)), key
    shard_only = _metrics()
    shard_only.update(real[:10], real=True)
    shard_only.update(fake[:7], real=False)
    assert abs(shard_only.compute()["fid"] - expected["fid"]) > 1e-3  # a per-rank FID would differ
