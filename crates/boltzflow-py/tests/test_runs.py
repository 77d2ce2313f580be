"""Runs from Python: configurations given as dicts, VAE and VAN run directories as model
objects, progress output, and Ctrl-C stopping a training cleanly at a checkpoint from which
`resume=True` continues to the same parameters as an uninterrupted run."""
import os
import signal
import threading

import numpy as np
import pytest

import boltzflow


def van_config(steps=1500, betas=(0.5, 1.0)):
    return {
        "model": "van",
        "seed": 3,
        "system": {"spec": "sk:n=8,seed=2"},
        "network": {"type": "made", "depth": 2, "width": 32, "z2": True},
        "train": {
            "betas": list(betas),
            "steps": steps,
            "batch_size": 256,
            "lr": 2e-3,
            "anneal": 0.98,
            "checkpoint_every": 100,
            "log_every": 10,
        },
        "evaluate": {"n_samples": 20_000},
    }


def all_spins(n):
    """Every configuration of n spins, [2ⁿ, n]."""
    idx = np.arange(2**n)[:, None] >> np.arange(n)[None, :]
    return np.where(idx & 1, 1.0, -1.0)


def test_a_dict_trains_the_run_its_toml_file_would(tmp_path):
    cfg = van_config()
    boltzflow.train(cfg, tmp_path / "from_dict", progress=False)
    toml = tmp_path / "van.toml"
    toml.write_text(
        'model = "van"\nseed = 3\n[system]\nspec = "sk:n=8,seed=2"\n'
        '[network]\ntype = "made"\ndepth = 2\nwidth = 32\nz2 = true\n'
        "[train]\nbetas = [0.5, 1.0]\nsteps = 1500\nbatch_size = 256\nlr = 2e-3\nanneal = 0.98\n"
        "checkpoint_every = 100\nlog_every = 10\n[evaluate]\nn_samples = 20000\n"
    )
    boltzflow.train(str(toml), str(tmp_path / "from_file"), progress=False)
    a, b = boltzflow.load(tmp_path / "from_dict"), boltzflow.load(tmp_path / "from_file")
    assert isinstance(a, boltzflow.VAN) and a.n_spins == 8
    s = all_spins(8)
    np.testing.assert_array_equal(a.log_prob(s), b.log_prob(s))
    # q is a normalised distribution over the 256 states.
    assert abs(np.exp(a.log_prob(s)).sum() - 1.0) < 1e-4
    spins, log_q, log_w = a.sample(5000, seed=1)
    assert spins.shape == (5000, 8) and set(np.unique(spins)) == {-1.0, 1.0}
    np.testing.assert_allclose(a.log_prob(spins), log_q, atol=1e-5)
    m = a.evaluate()
    assert [r["beta"] for r in m["results"]] == [0.5, 1.0]
    # Against exact enumeration: the variational bound F_q ≥ F holds within its error, and a
    # short training already lands within 1 %.
    for r in m["results"]:
        assert r["f_per_spin"] >= r["f_exact_per_spin"] - 4 * r["f_per_spin_stderr"]
        assert r["rel_error"] < 1e-2
    # Unknown keys and bad values name the field; a value of no TOML type names its key.
    with pytest.raises(ValueError, match="widht"):
        boltzflow.train({**cfg, "network": {"type": "made", "widht": 3}}, tmp_path / "x")
    with pytest.raises(TypeError, match=r"train\.betas\[0\]"):
        boltzflow.train({**cfg, "train": {"betas": [object()]}}, tmp_path / "y")


def test_progress_goes_to_print_or_a_callback(tmp_path, capsys):
    lines = []
    boltzflow.train(van_config(steps=100, betas=(0.5,)), tmp_path / "a", progress=lines.append)
    assert any("step    100/100" in line for line in lines), lines
    boltzflow.train(van_config(steps=100, betas=(0.5,)), tmp_path / "b")
    assert "step    100/100" in capsys.readouterr().out
    boltzflow.train(van_config(steps=100, betas=(0.5,)), tmp_path / "c", progress=False)
    assert capsys.readouterr().out == ""


def test_ctrl_c_stops_at_a_checkpoint_and_resume_ends_where_an_uninterrupted_run_does(tmp_path):
    cfg = van_config(steps=400)
    boltzflow.train(cfg, tmp_path / "whole", progress=False)

    # Ctrl-C while a progress line is printed: the run stops at the next step, checkpointed.
    seen = []

    def interrupt_on_the_fifth_line(line):
        seen.append(line)
        if len(seen) == 5:
            os.kill(os.getpid(), signal.SIGINT)

    with pytest.raises(KeyboardInterrupt, match="resume=True") as e:
        boltzflow.train(cfg, tmp_path / "cut", progress=interrupt_on_the_fifth_line)
    assert "checkpoint" in str(e.value)
    assert (tmp_path / "cut" / "checkpoint.safetensors").exists()
    boltzflow.train(cfg, tmp_path / "cut", resume=True, progress=False)
    s = all_spins(8)
    np.testing.assert_array_equal(
        boltzflow.VAN(tmp_path / "cut").log_prob(s), boltzflow.VAN(tmp_path / "whole").log_prob(s)
    )


def test_ctrl_c_from_the_terminal_reaches_a_training_that_holds_no_gil(tmp_path):
    # SIGINT arrives while Rust computes with the GIL released (as a terminal's Ctrl-C does);
    # the run notices at its next check. 10⁶ steps cannot finish before it.
    cfg = van_config(steps=1_000_000, betas=(0.5,))
    cfg["train"]["checkpoint_every"] = 1_000_000
    timer = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt, match="interrupted after"):
            boltzflow.train(cfg, tmp_path / "run", progress=False)
    finally:
        timer.cancel()
    assert (tmp_path / "run" / "checkpoint.safetensors").exists()


def test_a_vae_run_directory_samples_and_encodes(tmp_path):
    cfg = {
        "model": "vae",
        "seed": 2,
        "system": {"spec": "gaussian2d"},
        "data": {"exact": 4000},
        "vae": {"decoder": "cond-indep"},
        "train": {"betas": [0, 1], "epochs": 6, "anneal_epochs": 2, "lr": 2e-3},
        "evaluate": {"n_encode": 1000, "mc_walkers": 200, "mc_steps": 20},
    }
    boltzflow.train(cfg, tmp_path / "vae", progress=False)
    vae = boltzflow.load(tmp_path / "vae")
    assert isinstance(vae, boltzflow.VAE) and vae.latent_dim == 1 and vae.dim == 2
    x = np.random.default_rng(0).normal(-3.0, 1.0, size=(500, 2))
    mu, var = vae.encode(x)
    assert mu.shape == (500, 1) and var.shape == (500, 1) and np.all(var > 0)
    mu0, _ = vae.encode(x, stage=0)
    assert not np.array_equal(mu0, mu)
    with pytest.raises(ValueError, match="finished stages"):
        vae.encode(x, stage=7)
    with pytest.raises(ValueError, match=r"\[n, 2\]"):
        vae.encode(np.zeros((3, 5)))
    samples = vae.sample(20_000, seed=1)
    assert samples.shape == (20_000, 2)
    np.testing.assert_array_equal(samples, vae.sample(20_000, seed=1))
    # At β = 1 the model is a density of N((−3, −3), I): its samples' mean is near (−3, −3).
    assert np.all(np.abs(samples.mean(axis=0) + 3.0) < 0.3), samples.mean(axis=0)
    m = vae.evaluate()
    assert [s["beta"] for s in m["stages"]] == [0, 1]
    assert {"jd_encode", "jd_prior", "total_correlation", "active_dims", "f_acc"} <= set(m["stages"][1])
