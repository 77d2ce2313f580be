"""A Python session trains the double-well Boltzmann generator, samples and reweights; the
numbers equal the command line's on the same run directory and seed."""
import os
import pathlib
import re
import subprocess

import numpy as np
import pytest

import boltzflow


def reduced_config(root, tmp_path):
    text = (root / "examples" / "double_well_bg.toml").read_text()
    text = text.replace("epochs = 10\n", "epochs = 3\n", 1).replace("epochs = 20\n", "epochs = 3\n", 1)
    path = tmp_path / "dw.toml"
    path.write_text(text)
    return path


def test_train_sample_and_reweight_equal_the_cli(root, tmp_path):
    cfg = reduced_config(root, tmp_path)
    out = boltzflow.train(str(cfg), str(tmp_path / "run"))
    assert pathlib.Path(out).joinpath("checkpoint.safetensors").exists()
    with pytest.raises(ValueError, match="already holds a run"):
        boltzflow.train(str(cfg), str(tmp_path / "run"))
    bg = boltzflow.BoltzmannGenerator(str(out))
    x, lw = bg.sample(20000, seed=3)
    assert x.shape == (20000, 2) and lw.shape == (20000,)
    assert np.all(np.isfinite(lw))
    w = np.exp(lw - lw.max())
    ess = w.sum() ** 2 / (w * w).sum() / len(w)
    assert 0.0 < ess <= 1.0
    # The same samples from the command line.
    exe = os.environ.get("BOLTZFLOW_BIN", str(root / "target" / "release" / "boltzflow"))
    if not pathlib.Path(exe).exists():
        pytest.skip(f"no boltzflow binary at {exe} (set BOLTZFLOW_BIN)")
    subprocess.run(
        [exe, "sample", str(out), "--n", "20000", "--seed", "3", "--out", str(tmp_path / "x.npy"),
         "--log-weights", str(tmp_path / "w.npy")],
        check=True,
        capture_output=True,
    )
    np.testing.assert_array_equal(np.load(tmp_path / "x.npy"), x)
    np.testing.assert_array_equal(np.load(tmp_path / "w.npy"), lw)


def test_a_bad_configuration_names_the_field(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('model = "gan"\n')
    with pytest.raises(ValueError, match=re.escape("unknown model `gan`")):
        boltzflow.train(str(bad), str(tmp_path / "run"))
