"""Checkpoints that cannot hurt: pickle payloads are refused, and `kill -9` loses at most one
checkpoint interval, after which ``resume=True`` ends exactly where an uninterrupted run ends."""

from __future__ import annotations

import os
import pickle
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

import galwidgets as gw
from galwidgets.checkpoints import read_checkpoint_tensors


class _Payload:
    """Unpickling this creates a marker file: proof that code ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.mark.parametrize("writer", ["pickle", "torch.save"])
def test_a_checkpoint_carrying_a_pickle_payload_is_refused(tmp_path, writer):
    marker = tmp_path / "code-ran"
    path = tmp_path / "model.safetensors"
    payload = {"model/weight": torch.zeros(2), "evil": _Payload(marker)}
    if writer == "pickle":
        path.write_bytes(pickle.dumps(payload))
    else:
        torch.save(payload, path)
    with pytest.raises(ValueError, match=r"pickle / torch\.save file, which galwidgets refuses to load"):
        gw.load_checkpoint(path)
    assert not marker.exists()


def test_a_file_that_is_not_a_checkpoint_is_named(tmp_path):
    path = tmp_path / "notes.safetensors"
    path.write_text("not a checkpoint")
    with pytest.raises(ValueError, match=r"path: .* is not a readable safetensors checkpoint"):
        gw.load_checkpoint(path)


_TRAIN_SCRIPT = textwrap.dedent("""
    import sys
    import torch
    import galwidgets as gw

    out = sys.argv[1]
    survey = gw.data.simulate_survey(32, size=16, seed=3, psf_fwhm=0.8, progress=False)
    torch.manual_seed(0)
    model = gw.models.UNet(in_channels=3, base_channels=8, channel_mults=(1, 2), attention_levels=(),
                           groups=4)
    gw.train(model, gw.diffusion.NoiseSchedule.cosine(100), survey, steps=STEPS, batch_size=8,
             checkpoint_dir=out, checkpoint_every=EVERY, autocast=False, progress=False, seed=7)
""")
STEPS, EVERY = 60, 10


def _run(script: Path, out: Path) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, str(script), str(out)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def _final(out: Path) -> tuple[dict, pd.DataFrame]:
    _, tensors = read_checkpoint_tensors(out / f"step_{STEPS:07d}.safetensors")
    return tensors, pd.read_csv(out / "train_log.csv")


@pytest.mark.slow
def test_kill_9_then_resume_matches_the_uninterrupted_run(tmp_path):
    script = tmp_path / "train.py"
    script.write_text(_TRAIN_SCRIPT.replace("STEPS", str(STEPS)).replace("EVERY", str(EVERY)))

    reference = _run(script, tmp_path / "reference")
    assert reference.wait(timeout=600) == 0, reference.stderr.read().decode()

    interrupted = tmp_path / "interrupted"
    proc = _run(script, interrupted)
    deadline = time.time() + 600
    while not (interrupted / f"step_{3 * EVERY:07d}.safetensors").exists():
        assert proc.poll() is None, proc.stderr.read().decode()
        assert time.time() < deadline
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    kept = sorted(p.name for p in interrupted.glob("step_*.safetensors"))
    assert kept[-1] >= f"step_{3 * EVERY:07d}.safetensors" < f"step_{STEPS:07d}.safetensors"
    for path in interrupted.glob("step_*.safetensors"):  # never a half-written checkpoint
        read_checkpoint_tensors(path)

    resumed = _run(script, interrupted)
    assert resumed.wait(timeout=600) == 0, resumed.stderr.read().decode()
    ref_tensors, ref_log = _final(tmp_path / "reference")
    tensors, log = _final(interrupted)
    for key in ref_tensors:
        if key.startswith(("model/", "ema/", "optim/")):
            assert torch.equal(tensors[key], ref_tensors[key]), key
    assert list(log.step) == list(range(1, STEPS + 1))
    pd.testing.assert_series_equal(log.loss, ref_log.loss)
