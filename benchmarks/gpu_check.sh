#!/usr/bin/env bash
# GPU speed check for issue 14 (one script, about 3-4 minutes on one modern GPU).
# Run from the repository root with the project's venv active:  bash benchmarks/gpu_check.sh
set -euo pipefail
export PYTHONPATH="${PYTHONPATH:-$(pwd)}"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
# 1. The fast ops are exact on the GPU too (depthwise FIR, per-call modulated conv, fused act).
python - <<'PY'
import torch
from lightning_gancomp.nets.stylegan2 import StyleGAN2Generator
from lightning_gancomp.nets.stylegan_layers import ModulatedConv2d
torch.manual_seed(0)
g = StyleGAN2Generator(256).cuda().eval()
z = torch.randn(8, 512, device="cuda")
outs = []
for fused in (None, True, False):
    for m in g.modules():
        if isinstance(m, ModulatedConv2d):
            m.fused = fused
    with torch.no_grad():
        outs.append(g(z, randomize_noise=False))
print("GPU exactness, auto vs grouped vs shared modconv: max |diff|",
      (outs[0] - outs[1]).abs().max().item(), (outs[0] - outs[2]).abs().max().item())
PY
# 2. MAC ratio vs measured speedup, batch 64, teacher/student interleaved (eager fp32 and fp16).
timeout 240 python benchmarks/bench_speedup.py --device cuda --batch 64 --backends eager --dtypes fp32,fp16 \
  --warmup 3 --repeats 10
# 3. Per-call choice of the modulated-conv form on the GPU (grouped vs shared, batch 1 and 64).
python - <<'PY'
import statistics, time, torch
from lightning_gancomp.nets.stylegan_layers import ModulatedConv2d
for cin, cout, res in [(512, 512, 4), (512, 512, 32), (256, 256, 64), (128, 128, 256), (154, 154, 32), (39, 39, 256)]:
    m = ModulatedConv2d(cin, cout, 3, 512).cuda().eval()
    for batch in (1, 64):
        x, s = torch.randn(batch, cin, res, res, device="cuda"), torch.randn(batch, 512, device="cuda")
        t = {True: [], False: []}
        with torch.no_grad():
            for _ in range(3):
                for f in t:
                    m.fused = f; m(x, s)
            for _ in range(10):
                for f in t:
                    m.fused = f; torch.cuda.synchronize(); a = time.perf_counter(); m(x, s)
                    torch.cuda.synchronize(); t[f].append(time.perf_counter() - a)
        g, sh = statistics.median(t[True]), statistics.median(t[False])
        m.fused = None
        print(f"modconv {cin}->{cout} @{res}px batch {batch}: grouped {1e3*g:.2f} ms, shared {1e3*sh:.2f} ms,"
              f" rule picks {'grouped' if m.prefers_grouped(x) else 'shared'}, faster: {'grouped' if g < sh else 'shared'}")
PY
