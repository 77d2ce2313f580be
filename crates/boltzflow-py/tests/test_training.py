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
    out = boltzflow.train(str(cfg), str(tmp_path / "run"), progress=False)
    assert pathlib.Path(out).joinpath("checkpoint.safetensors").exists()
    with pytest.raises(ValueError, match="already holds a run"):
        boltzflow.train(str(cfg), str(tmp_path / "run"), progress=False)
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


def test_a_generator_scores_configurations_and_evaluates(root, tmp_path):
    out = boltzflow.train(str(reduced_config(root, tmp_path)), str(tmp_path / "run"), progress=False)
    bg = boltzflow.load(out)
    assert isinstance(bg, boltzflow.BoltzmannGenerator) and bg.dim == 2
    x, lw = bg.sample(5000, seed=2)
    # The inverse pass scores what the forward pass drew (f32 network: agree to ~1e-4).
    np.testing.assert_allclose(bg.log_weights(x), lw, atol=2e-3)
    u = boltzflow.System("double-well").energy(x)
    np.testing.assert_allclose(bg.log_prob(x), -u - bg.log_weights(x), atol=1e-9)
    with pytest.raises(ValueError, match="row 1, column 0"):
        bg.log_prob(np.array([[0.0, 0.0], [np.nan, 0.0]]))
    m = bg.evaluate(n_samples=20_000)
    assert pathlib.Path(out, "metrics.json").exists()
    # Six epochs give a rough generator; reweighting still recovers the exact ΔF within its
    # error bars (bootstrap), which is what the importance weights are for.
    assert abs(m["delta_f"] - m["delta_f_exact"]) < 5 * m["delta_f_std_error"] + 0.05, m
    assert 0.0 < m["ess_fraction"] <= 1.0


def test_simulate_equals_the_command_line_and_the_exact_basin_populations(root, tmp_path):
    system = boltzflow.System("mueller")
    # The seed paper's protocol (10⁵ steps, burn-in 6·10⁴, a frame every 4000 steps).
    args = dict(chains=200, steps=100_000, burn_in=60_000, stride=4000, step_size=0.1, seed=7)
    x, e, summary = boltzflow.simulate(system, "metropolis", **args)
    assert x.shape == (10 * 200, 2) and e.shape == (10, 200)
    np.testing.assert_allclose(system.energy(x), e.ravel(), rtol=1e-12)
    assert 0.2 < summary["acceptance"] < 0.9
    for b in summary["basins"]:
        assert abs(b["sampled"] - b["exact"]) < 4 * b["standard_error"], b
    exe = os.environ.get("BOLTZFLOW_BIN", str(root / "target" / "release" / "boltzflow"))
    if not pathlib.Path(exe).exists():
        pytest.skip(f"no boltzflow binary at {exe} (set BOLTZFLOW_BIN)")
    subprocess.run(
        [exe, "simulate", "--system", "mueller", "--sampler", "metropolis", "--chains", "200",
         "--steps", "100000", "--burn-in", "60000", "--stride", "4000", "--step-size", "0.1",
         "--seed", "7", "--out", str(tmp_path / "x.npy"), "--quiet"],
        check=True,
        capture_output=True,
    )
    np.testing.assert_array_equal(np.load(tmp_path / "x.npy"), x)
    with pytest.raises(ValueError, match="unknown sampler `hmc`"):
        boltzflow.simulate(system, "hmc")


def test_a_bad_configuration_names_the_field(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text('model = "gan"\n')
    with pytest.raises(ValueError, match=re.escape("unknown model `gan`")):
        boltzflow.train(str(bad), str(tmp_path / "run"))
