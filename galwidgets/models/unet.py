"""ε-prediction U-Net of Ho et al. (2020), with optional scalar conditioning (e.g. redshift).

The network predicts the noise ε (default) or, with ``prediction="v"``, the velocity
``v = √ᾱ ε - √(1-ᾱ) x_0`` of Salimans & Ho (2022); samplers turn either into ε and x_0.

The architecture follows the DDPM / "improved DDPM" U-Net (Ho et al. 2020, Appendix B; Nichol &
Dhariwal 2021): residual blocks with GroupNorm and SiLU, a sinusoidal time embedding added in every
block, self-attention at chosen levels and skip connections between the encoder and decoder.
A conditioning vector is embedded and added to the time embedding; a learned "no condition"
embedding stands in when the condition is dropped, which enables classifier-free guidance (Ho &
Salimans 2022).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["UNet", "timestep_embedding"]


def timestep_embedding(t: torch.Tensor, dim: int, max_period: float = 10000.0) -> torch.Tensor:
    """Sinusoidal embedding of (possibly fractional) timesteps, Vaswani et al. (2017).

    Parameters
    ----------
    t : torch.Tensor
        Timesteps shaped ``(N,)``.
    dim : int
        Embedding size (even).
    """
    half = dim // 2
    freqs = torch.exp(
        -math.log(max_period) * torch.arange(half, dtype=torch.float32, device=t.device) / half
    )
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=-1)


def _zero(module: nn.Module) -> nn.Module:
    """Zero-initialise a layer so that a residual branch starts as the identity."""
    for p in module.parameters():
        nn.init.zeros_(p)
    return module


class ResBlock(nn.Module):
    """GroupNorm-SiLU-conv twice, with the time (+ condition) embedding in between.

    The embedding is added to the features (Ho et al. 2020), or with ``scale_shift`` it scales and
    shifts the second group normalisation, ``GroupNorm(h) (1 + s) + b`` (adaptive group
    normalisation, Dhariwal & Nichol 2021, sec. 3): a multiplicative path, through which a
    condition such as redshift can change each band's brightness rather than only offset it.
    """

    def __init__(self, channels_in: int, channels_out: int, emb_dim: int, dropout: float, groups: int,
                 scale_shift: bool = False):
        super().__init__()
        self.scale_shift = scale_shift
        self.norm1 = nn.GroupNorm(groups, channels_in)
        self.conv1 = nn.Conv2d(channels_in, channels_out, 3, padding=1)
        self.emb = nn.Linear(emb_dim, 2 * channels_out if scale_shift else channels_out)
        self.norm2 = nn.GroupNorm(groups, channels_out)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = _zero(nn.Conv2d(channels_out, channels_out, 3, padding=1))
        self.skip = (
            nn.Identity() if channels_in == channels_out else nn.Conv2d(channels_in, channels_out, 1)
        )

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        e = self.emb(F.silu(emb))[:, :, None, None]
        if self.scale_shift:
            scale, shift = e.chunk(2, dim=1)
            h = self.norm2(h) * (1 + scale) + shift
        else:
            h = self.norm2(h + e)
        h = self.conv2(self.dropout(F.silu(h)))
        return self.skip(x) + h


class AttentionBlock(nn.Module):
    """Multi-head self-attention over pixels, through ``scaled_dot_product_attention``."""

    def __init__(self, channels: int, heads: int, groups: int):
        super().__init__()
        if channels % heads:
            raise ValueError(f"heads: {heads} does not divide {channels} channels")
        self.heads = heads
        self.norm = nn.GroupNorm(groups, channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.proj = _zero(nn.Conv2d(channels, channels, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        qkv = self.qkv(self.norm(x)).reshape(n, 3, self.heads, c // self.heads, h * w)
        # contiguous (n, heads, hw, c/heads): strided inputs send SDPA to its slow math path on CPU
        # (5x slower at 16x16, BENCHMARKS.md)
        q, k, v = (qkv[:, i].transpose(-1, -2).contiguous() for i in range(3))
        out = F.scaled_dot_product_attention(q, k, v)
        return x + self.proj(out.transpose(-1, -2).reshape(n, c, h, w))


class UNet(nn.Module):
    """ε-prediction U-Net for multi-band galaxy images.

    Parameters
    ----------
    in_channels : int
        Number of bands.
    out_channels : int, optional
        Output channels; defaults to ``in_channels`` (ε has the shape of the image).
    base_channels : int
        Feature channels at full resolution.
    channel_mults : sequence of int
        Channel multiplier per level; level ``i`` works at ``size / 2**i``.
    num_res_blocks : int
        Residual blocks per level in the encoder (the decoder has one more).
    attention_levels : sequence of int
        Levels (0 = full resolution) that get self-attention; the bottleneck always has it.
    dropout : float
        Dropout rate inside residual blocks.
    cond_dim : int
        Size of the conditioning vector (e.g. 1 for redshift); 0 for an unconditional model.
    cond_center, cond_scale : float
        The condition enters the embedding as ``(cond − cond_center) / cond_scale``, so a narrow
        range such as redshifts 0.02-0.12 reaches the network at unit scale; callers always pass
        the physical value.
    heads : int
        Attention heads.
    scale_shift : bool
        Adaptive group normalisation (Dhariwal & Nichol 2021): the time and condition embedding
        scales and shifts the features of every residual block instead of being added to them.
    groups : int
        GroupNorm groups; must divide every channel count.
    prediction : {"eps", "v"}
        What the network outputs: the noise ε, or the velocity v. v-prediction keeps the x_0
        estimate accurate at very low signal-to-noise, where ε-prediction must be exact to
        1/√ᾱ_t; on the mock survey it is what makes 50-step DDIM samples match the data
        (see ``galwidgets/pretrained/README.md``).
    """

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int | None = None,
        base_channels: int = 32,
        channel_mults: Sequence[int] = (1, 2, 2, 2),
        num_res_blocks: int = 1,
        attention_levels: Sequence[int] = (2,),
        dropout: float = 0.0,
        cond_dim: int = 0,
        heads: int = 4,
        groups: int = 8,
        prediction: str = "eps",
        cond_center: float = 0.0,
        cond_scale: float = 1.0,
        scale_shift: bool = False,
    ) -> None:
        super().__init__()
        for name, value in (("in_channels", in_channels), ("base_channels", base_channels),
                            ("num_res_blocks", num_res_blocks)):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name}: expected a positive integer, got {value!r}")
        if not channel_mults or any(int(m) < 1 for m in channel_mults):
            raise ValueError(f"channel_mults: expected positive integers, got {channel_mults!r}")
        if any(not 0 <= lvl < len(channel_mults) for lvl in attention_levels):
            raise ValueError(
                f"attention_levels: expected levels in 0..{len(channel_mults) - 1}, got {attention_levels!r}"
            )
        if not isinstance(scale_shift, bool):
            raise ValueError(f"scale_shift: expected True or False, got {scale_shift!r}")
        if prediction not in ("eps", "v"):
            raise ValueError(f"prediction: expected 'eps' or 'v', got {prediction!r}")
        if not isinstance(cond_dim, int) or cond_dim < 0:
            raise ValueError(f"cond_dim: expected a non-negative integer, got {cond_dim!r}")
        if not (math.isfinite(cond_scale) and cond_scale > 0) or not math.isfinite(cond_center):
            raise ValueError(f"cond_scale: expected a positive scale and finite centre, got "
                             f"{cond_scale!r}, {cond_center!r}")
        self.config = {
            "in_channels": in_channels,
            "out_channels": out_channels or in_channels,
            "base_channels": base_channels,
            "channel_mults": [int(m) for m in channel_mults],
            "num_res_blocks": num_res_blocks,
            "attention_levels": [int(lvl) for lvl in attention_levels],
            "dropout": float(dropout),
            "cond_dim": cond_dim,
            "heads": heads,
            "groups": groups,
            "prediction": prediction,
        }
        if cond_center != 0.0 or cond_scale != 1.0:  # only when used: older configs stay valid
            self.config.update(cond_center=float(cond_center), cond_scale=float(cond_scale))
        if scale_shift:  # likewise
            self.config["scale_shift"] = True
        self.cond_center, self.cond_scale = float(cond_center), float(cond_scale)
        self.cond_dim = cond_dim
        self.levels = len(channel_mults)
        emb_dim = 4 * base_channels
        self.time_mlp = nn.Sequential(
            nn.Linear(base_channels, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim)
        )
        if cond_dim:
            self.cond_mlp = nn.Sequential(
                nn.Linear(cond_dim, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim)
            )
            self.null_cond = nn.Parameter(torch.zeros(emb_dim))

        def res(cin: int, cout: int) -> ResBlock:
            return ResBlock(cin, cout, emb_dim, dropout, groups, scale_shift=scale_shift)

        self.conv_in = nn.Conv2d(in_channels, base_channels, 3, padding=1)
        self.down = nn.ModuleList()
        skips, ch = [base_channels], base_channels
        for level, mult in enumerate(channel_mults):
            for _ in range(num_res_blocks):
                block = nn.ModuleList([res(ch, base_channels * mult)])
                ch = base_channels * mult
                if level in attention_levels:
                    block.append(AttentionBlock(ch, heads, groups))
                self.down.append(block)
                skips.append(ch)
            if level < self.levels - 1:
                self.down.append(nn.ModuleList([nn.Conv2d(ch, ch, 3, stride=2, padding=1)]))
                skips.append(ch)
        self.mid = nn.ModuleList([res(ch, ch), AttentionBlock(ch, heads, groups), res(ch, ch)])
        self.up = nn.ModuleList()
        for level, mult in reversed(list(enumerate(channel_mults))):
            for i in range(num_res_blocks + 1):
                block = nn.ModuleList([res(ch + skips.pop(), base_channels * mult)])
                ch = base_channels * mult
                if level in attention_levels:
                    block.append(AttentionBlock(ch, heads, groups))
                if level > 0 and i == num_res_blocks:
                    block.append(nn.Upsample(scale_factor=2, mode="nearest"))
                    block.append(nn.Conv2d(ch, ch, 3, padding=1))
                self.up.append(block)
        self.norm_out = nn.GroupNorm(groups, ch)
        self.conv_out = _zero(nn.Conv2d(ch, out_channels or in_channels, 3, padding=1))

    @property
    def num_parameters(self) -> int:
        """Number of trainable parameters."""
        return sum(p.numel() for p in self.parameters() if p.requires_grad)

    def embed(
        self, t: torch.Tensor, cond: torch.Tensor | None = None, drop_cond: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Time embedding plus condition embedding (or the learned null embedding)."""
        emb = self.time_mlp(timestep_embedding(t, self.config["base_channels"]))
        if not self.cond_dim:
            if cond is not None:
                raise ValueError("cond: this model is unconditional (cond_dim=0) but a condition was given")
            return emb
        null = self.null_cond.to(emb.dtype).expand_as(emb)
        if cond is None:
            return emb + null
        cond = cond.to(emb.device, emb.dtype).reshape(len(emb), -1)
        if cond.shape[1] != self.cond_dim:
            raise ValueError(f"cond: expected {self.cond_dim} values per image, got {cond.shape[1]}")
        c = self.cond_mlp((cond - self.cond_center) / self.cond_scale)
        if drop_cond is not None:
            c = torch.where(drop_cond.reshape(-1, 1), null, c)
        return emb + c

    def forward(
        self,
        x: torch.Tensor,
        t: torch.Tensor,
        cond: torch.Tensor | None = None,
        drop_cond: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Predict the noise ε (or the velocity v, see ``prediction``) in ``x`` at timesteps ``t``.

        Parameters
        ----------
        x : torch.Tensor
            Noisy images ``(N, C, H, W)`` in model space.
        t : torch.Tensor
            Integer (or fractional) timesteps ``(N,)`` or a scalar.
        cond : torch.Tensor, optional
            Conditions ``(N, cond_dim)``; ``None`` uses the "no condition" embedding.
        drop_cond : torch.Tensor, optional
            Boolean ``(N,)``: replace the condition by the null embedding where True.
        """
        factor = 2 ** (self.levels - 1)
        if x.ndim != 4 or x.shape[-1] % factor or x.shape[-2] % factor:
            raise ValueError(
                f"x: expected (N, C, H, W) with H and W divisible by {factor} "
                f"(2**(levels-1) for {self.levels} levels), got shape {tuple(x.shape)}"
            )
        if x.shape[1] != self.config["in_channels"]:
            raise ValueError(f"x: expected {self.config['in_channels']} channels, got {x.shape[1]}")
        t = torch.as_tensor(t, device=x.device).reshape(-1).expand(len(x))
        emb = self.embed(t, cond, drop_cond)
        h = self.conv_in(x)
        skips = [h]
        for block in self.down:
            h = _apply(block, h, emb)
            skips.append(h)
        h = _apply(self.mid, h, emb)
        for block in self.up:
            h = _apply(block, torch.cat([h, skips.pop()], dim=1), emb)
        return self.conv_out(F.silu(self.norm_out(h)))


def _apply(block: nn.ModuleList, h: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
    for layer in block:
        h = layer(h, emb) if isinstance(layer, ResBlock) else layer(h)
    return h
