"""Systems and trajectories from Python equal the Rust results and the reference fixtures."""
import numpy as np
import pytest

import boltzflow


def test_openmm_energies_and_forces_equal_the_openmm_reference(root):
    data = root / "data" / "ala2"
    system = boltzflow.System(f"openmm:{data / 'ala2_system.xml'}", pdb=str(data / "ala2.pdb"))
    assert system.dim == 66
    x = np.load(data / "positions_nm.npy")
    e, f = system.energy_and_forces(x)
    assert np.max(np.abs(e - np.load(data / "energies_kJmol.npy"))) < 1e-9
    assert np.max(np.abs(f - np.load(data / "forces_kJmol_nm.npy"))) < 1e-4
    np.testing.assert_array_equal(system.energy(x), e)
    # A non-contiguous view is accepted (copied once) and gives the same numbers.
    wide = np.repeat(x, 2, axis=1)[:, ::2]
    np.testing.assert_array_equal(system.energy(wide), e)


def test_bad_input_raises_with_the_rust_message():
    with pytest.raises(ValueError, match="known systems"):
        boltzflow.System("muller-brwn")
    system = boltzflow.System("mueller")
    with pytest.raises(ValueError, match="shape"):
        system.energy(np.zeros((3, 5)))
    with pytest.raises(OSError, match="missing.xtc"):
        boltzflow.read_trajectory("missing.xtc")


def test_trajectories_read_as_mdtraj_reads_them_and_round_trip(root, tmp_path):
    fx = root / "scripts" / "fixtures" / "trajectories"
    for ext in ("xtc", "trr", "dcd"):
        x = boltzflow.read_trajectory(str(fx / f"ala2.{ext}"))
        ref = np.load(fx / f"ala2_{ext}_mdtraj.npy")
        assert x.shape == (7, 66)
        assert np.max(np.abs(x - ref)) < 1e-6
        boltzflow.write_trajectory(str(tmp_path / f"t.{ext}"), x, dt_ps=0.5)
        back = boltzflow.read_trajectory(str(tmp_path / f"t.{ext}"))
        assert np.max(np.abs(back - x)) <= (5.01e-4 if ext == "xtc" else 1e-6)
