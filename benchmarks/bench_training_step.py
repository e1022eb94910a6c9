"""Time one training step of two U-Net configurations under each precision/layout option.

Measures float32 vs bf16 autocast and contiguous vs channels_last, the switches gw.train turns on
where they pay off, in one process, and prints each option's speed-up over plain float32.

    python benchmarks/bench_training_step.py [--batch-size 32] [--repeats 5]
"""

from __future__ import annotations

import argparse
import time
from contextlib import nullcontext

import torch

import galwidgets as gw
from galwidgets.pretrained.recipes import RECIPES

CONFIGS = {"UNet() defaults": {}, "desi-tiny": RECIPES["desi-tiny"]["model"]}


def step_seconds(config: dict, channels_last: bool, bf16: bool, batch_size: int, repeats: int) -> float:
    torch.manual_seed(0)
    model = gw.models.UNet(**config)
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)
    x = torch.randn(batch_size, 3, 64, 64).contiguous(memory_format=fmt)
    t = torch.randint(0, 1000, (batch_size,))
    times = []
    for _ in range(repeats + 1):  # the first step warms up and is not counted
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else nullcontext():
            loss = model(x, t).float().pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        times.append(time.perf_counter() - t0)
    return min(times[1:])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    threads = torch.get_num_threads()
    print(f"torch {torch.__version__}, {threads} threads, batch {args.batch_size} x 3 x 64 x 64")
    for name, config in CONFIGS.items():
        params = gw.models.UNet(**config).num_parameters
        print(f"{name} ({params / 1e6:.2f} M parameters)")
        base = None
        for channels_last in (False, True):
            for bf16 in (False, True):
                s = step_seconds(config, channels_last, bf16, args.batch_size, args.repeats)
                base = base or s
                layout = "channels_last" if channels_last else "contiguous"
                label = f"  {layout:>13} {'bf16' if bf16 else 'fp32'}"
                print(f"{label}: {s * 1000:7.0f} ms/step  speed-up {base / s:.2f}x")


if __name__ == "__main__":
    main()
