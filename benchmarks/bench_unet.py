"""galwidgets' U-Net + DDIM against diffusers' UNet2DModel + DDIMScheduler, in one process.

Both networks have the same layout (channels 32-64-64-64, one residual block per level, attention
at 16x16 and in the middle, GroupNorm 8, 4 heads); the script prints their parameter counts and
forward FLOPs (``torch.utils.flop_counter``) so the match can be checked, then images/s for a
training step (forward, MSE, backward, AdamW) and for 50-step DDIM sampling (timed over
``--sample-steps`` steps and scaled: every DDIM step costs the same), at identical settings and
each library's default, and the achieved GFLOP/s against this machine's measured matmul peak.

    pip install diffusers   # the peer; not a galwidgets dependency
    python benchmarks/bench_unet.py [--batch 64] [--size 64] [--compile]
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from contextlib import nullcontext

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

import galwidgets as gw


def ours() -> torch.nn.Module:
    return gw.models.UNet(in_channels=3, base_channels=32, channel_mults=(1, 2, 2, 2), num_res_blocks=1,
                          attention_levels=(2,), heads=4, groups=8)


def theirs(size: int) -> torch.nn.Module:
    from diffusers import UNet2DModel

    return UNet2DModel(
        sample_size=size, in_channels=3, out_channels=3, block_out_channels=(32, 64, 64, 64),
        layers_per_block=1, norm_num_groups=8, attention_head_dim=16,
        down_block_types=("DownBlock2D", "DownBlock2D", "AttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "AttnUpBlock2D", "UpBlock2D", "UpBlock2D"),
    )


def call(model: torch.nn.Module, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    out = model(x, t)
    return out.sample if hasattr(out, "sample") else out


def forward_flops(model: torch.nn.Module, size: int) -> float:
    x, t = torch.randn(1, 3, size, size), torch.tensor([500])
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        call(model, x, t)
    return counter.get_total_flops()


def seconds(fn: Callable[[], None], repeats: int) -> float:
    fn()  # warm-up (and compilation)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def train_step(model: torch.nn.Module, batch: int, size: int, bf16: bool, channels_last: bool):
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    x = torch.randn(batch, 3, size, size).contiguous(memory_format=fmt)
    t = torch.randint(1000, (batch,))
    ctx = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else nullcontext()

    def step() -> None:
        with ctx:
            loss = F.mse_loss(call(model, x, t).float(), x)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return step


def our_sampling(model, batch: int, size: int, steps: int, bf16: bool, channels_last: bool):
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt).eval()
    sched = gw.diffusion.NoiseSchedule.linear(1000)

    def run() -> None:
        gw.samplers.ddim(model, sched, (batch, 3, size, size), steps=steps, autocast=bf16,
                         channels_last=channels_last, generator=torch.Generator().manual_seed(0),
                         progress=False)
    return run


def their_sampling(model, batch: int, size: int, steps: int, bf16: bool, channels_last: bool):
    from diffusers import DDIMPipeline, DDIMScheduler

    fmt = torch.channels_last if channels_last else torch.contiguous_format
    pipe = DDIMPipeline(unet=model.to(memory_format=fmt).eval(), scheduler=DDIMScheduler())
    pipe.set_progress_bar_config(disable=True)
    ctx = torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else nullcontext()

    def run() -> None:
        with ctx, torch.no_grad():
            pipe(batch_size=batch, num_inference_steps=steps, output_type="np",
                 generator=torch.Generator().manual_seed(0))
    return run


def matmul_peak(dtype: torch.dtype, n: int = 2048) -> float:
    a, b = torch.randn(n, n, dtype=dtype), torch.randn(n, n, dtype=dtype)
    s = seconds(lambda: torch.mm(a, b), 5)
    return 2 * n**3 / s / 1e9


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--sample-steps", type=int, default=5, help="DDIM steps timed (scaled to 50)")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--compile", action="store_true", help="also time torch.compile'd sampling")
    args = parser.parse_args()
    b, size, k = args.batch, args.size, args.sample_steps
    torch.manual_seed(0)
    mine, peer = ours(), theirs(size)
    p_mine = sum(p.numel() for p in mine.parameters())
    p_peer = sum(p.numel() for p in peer.parameters())
    f_mine, f_peer = forward_flops(mine, size), forward_flops(peer, size)
    print(f"threads {torch.get_num_threads()}, batch {b}, {size}x{size}x3")
    print(f"parameters: galwidgets {p_mine / 1e6:.3f} M, diffusers {p_peer / 1e6:.3f} M "
          f"(ratio {p_mine / p_peer:.3f})")
    print(f"forward GFLOP per image: galwidgets {f_mine / 1e9:.3f}, diffusers {f_peer / 1e9:.3f} "
          f"(ratio {f_mine / f_peer:.3f})")
    peaks = {"fp32": matmul_peak(torch.float32), "bf16": matmul_peak(torch.bfloat16)}
    print(f"matmul peak (2048^2): fp32 {peaks['fp32']:.0f} GFLOP/s, bf16 {peaks['bf16']:.0f} GFLOP/s")

    settings = {"fp32": (False, False), "bf16+channels_last": (True, True)}
    rows = []
    for name, (bf16, cl) in settings.items():
        for lib, model in (("galwidgets", mine), ("diffusers", peer)):
            s_train = seconds(train_step(model, b, size, bf16, cl), args.repeats)
            sample = our_sampling if lib == "galwidgets" else their_sampling
            s_sample = seconds(sample(model, b, size, k, bf16, cl), args.repeats) / k
            flops = f_mine if lib == "galwidgets" else f_peer
            rows.append((name, lib, b / s_train, b / (50 * s_sample), flops * b / s_sample / 1e9,
                         peaks["bf16" if bf16 else "fp32"]))
    if args.compile:
        compiled = torch.compile(mine.to(memory_format=torch.channels_last))
        s_sample = seconds(our_sampling(compiled, b, size, k, True, True), args.repeats) / k
        rows.append(("bf16+channels_last+compile", "galwidgets", float("nan"), b / (50 * s_sample),
                     f_mine * b / s_sample / 1e9, peaks["bf16"]))
    print(f"{'setting':28s} {'library':11s} {'train img/s':>11s} {'50-step DDIM img/s':>19s} "
          f"{'sampling GFLOP/s':>17s} {'of peak':>8s}")
    for name, lib, train, sample, gflops, peak in rows:
        print(f"{name:28s} {lib:11s} {train:11.2f} {sample:19.3f} {gflops:17.1f} {gflops / peak:8.1%}")
    by = {(n, lib): (tr, sa) for n, lib, tr, sa, *_ in rows}
    for name in settings:
        (tr_m, sa_m), (tr_p, sa_p) = by[(name, "galwidgets")], by[(name, "diffusers")]
        print(f"{name}: galwidgets / diffusers = {tr_m / tr_p:.2f}x training, {sa_m / sa_p:.2f}x sampling")
    best = max(sa for (n, lib), (_, sa) in by.items() if lib == "galwidgets")
    print(f"galwidgets default sampling path / diffusers default fp32 pipeline: "
          f"{by[('bf16+channels_last', 'galwidgets')][1] / by[('fp32', 'diffusers')][1]:.2f}x "
          f"(best galwidgets path {best / by[('fp32', 'diffusers')][1]:.2f}x)")


if __name__ == "__main__":
    main()
