"""TICA with deeptime's API shape gives deeptime 0.4.5's numbers (committed fixture)."""
import json
import os
import pathlib
import subprocess

import numpy as np
import pytest

import boltzflow


def features(t):
    x1, x2 = t[:, 0], t[:, 1]
    return np.stack([x1, x2, x1 * x1, x1 * x2, x2 * x2], axis=1)


def test_tica_equals_deeptime(root):
    fx = root / "scripts" / "fixtures" / "kinetics"
    ref = json.load(open(fx / "deeptime_reference.json"))["tica"]
    raw = np.load(fx / "double_well_traj.npy")
    trajs = [features(raw[c::2]) for c in range(2)]
    for lag in (5, 20):
        model = boltzflow.TICA(lagtime=lag).fit(trajs).fetch_model()
        r = ref[str(lag)]
        np.testing.assert_allclose(model.singular_values, r["eigenvalues"], rtol=1e-8)
        np.testing.assert_allclose(model.timescales, r["timescales"], rtol=1e-7)
        assert model.lagtime == lag
        proj = model.transform(trajs[0][:5])
        # Eigenvectors are defined up to sign: compare column by column.
        first = np.array(r["projection_first_frames"])
        for k in range(proj.shape[1]):
            s = np.sign(proj[0, k]) * np.sign(first[0, k])
            np.testing.assert_allclose(s * proj[:, k], first[:, k], rtol=1e-6, atol=1e-9)
    one = boltzflow.TICA(lagtime=5, dim=2).fit(trajs[0]).fetch_model()
    assert one.transform(trajs[0]).shape == (trajs[0].shape[0], 2)


def reference(root):
    fx = root / "scripts" / "fixtures" / "kinetics"
    raw = np.load(fx / "double_well_traj.npy")
    return json.load(open(fx / "deeptime_reference.json")), [raw[c::2] for c in range(2)]


def test_vamp_clustering_and_msm_equal_deeptime(root):
    ref, raw = reference(root)
    feats = [features(t) for t in raw]
    vm = boltzflow.VAMP(lagtime=5).fit(feats).fetch_model()
    v = ref["vamp"]
    np.testing.assert_allclose(vm.singular_values, v["singular_values"], rtol=1e-8)
    assert abs(vm.score(1) - v["vamp1"]) < 1e-8
    assert abs(vm.score(2) - v["vamp2"]) < 1e-8
    assert abs(vm.score("E") - v["vampe"]) < 1e-8
    assert abs(vm.score(2, dim=2) - v["vamp2_dim2"]) < 1e-8

    grid = boltzflow.ClusterModel.from_centers(np.array(ref["centers"]))
    dtrajs = [grid.transform(t) for t in raw]
    assert [int(d.sum()) for d in dtrajs] == ref["dtraj_checksums"]
    assert [d[:50].tolist() for d in dtrajs] == ref["dtraj_first"]

    for lag in (1, 5, 10, 20):
        r = ref["msm"][str(lag)]
        msm = boltzflow.MaximumLikelihoodMSM(reversible=True).fit(dtrajs, lagtime=lag).fetch_model()
        assert msm.active_set.tolist() == r["active_set"]
        np.testing.assert_allclose(msm.count_matrix, r["count_matrix"], atol=0)
        np.testing.assert_allclose(msm.transition_matrix, r["transition_matrix"], atol=1e-9)
        np.testing.assert_allclose(msm.stationary_distribution, r["stationary_distribution"], atol=1e-9)
        np.testing.assert_allclose(msm.timescales(5), r["timescales"], rtol=1e-6)
    r = ref["msm"]["10"]
    msm = boltzflow.MaximumLikelihoodMSM(lagtime=10).fit(dtrajs).fetch_model()
    p = msm.pcca(2)
    # deeptime's sets index the active set, ours are the original states; both are defined up
    # to their order.
    active = r["active_set"]
    ref_sets = [[active[i] for i in s] for s in r["pcca_sets"]]
    assert sorted(p["sets"], key=min) == sorted(ref_sets, key=min)
    assert abs(msm.mfpt(ref_sets[0], ref_sets[1]) - r["mfpt_0_to_1"]) < 1e-6 * r["mfpt_0_to_1"]
    assert abs(msm.mfpt(ref_sets[1], ref_sets[0]) - r["mfpt_1_to_0"]) < 1e-6 * r["mfpt_1_to_0"]
    nonrev = boltzflow.MaximumLikelihoodMSM(reversible=False, lagtime=10).fit(dtrajs).fetch_model()
    np.testing.assert_allclose(nonrev.transition_matrix, r["nonreversible_transition_matrix"], atol=1e-9)
    its = boltzflow.implied_timescales(dtrajs, [1, 5, 10, 20], k=5)
    for row, lag in zip(its, (1, 5, 10, 20)):
        np.testing.assert_allclose(row, ref["msm"][str(lag)]["timescales"], rtol=1e-6)

    x2d = np.concatenate(raw)
    k = ref["kmeans"]
    km = boltzflow.KMeans(8, max_iter=10_000, tolerance=1e-14, initial_centers=np.array(k["initial_centers"]))
    km = km.fit(x2d).fetch_model()
    np.testing.assert_allclose(km.cluster_centers, k["centers"], atol=1e-8)
    assert abs(km.inertia - k["inertia"]) < 1e-6 * k["inertia"]
    rs = boltzflow.RegularSpace(dmin=0.75).fit(x2d).fetch_model()
    np.testing.assert_allclose(rs.cluster_centers, ref["regspace"]["centers"], atol=1e-12)


def test_bad_kinetic_input_raises_with_the_message():
    with pytest.raises(ValueError, match="fit"):
        boltzflow.TICA(lagtime=5).fetch_model()
    with pytest.raises(ValueError, match="negative"):
        boltzflow.MaximumLikelihoodMSM(lagtime=1).fit(np.array([0, 1, -1, 0]))
    with pytest.raises(TypeError, match="int64"):
        boltzflow.MaximumLikelihoodMSM(lagtime=1).fit([np.array([0.5, 1.0])])
    with pytest.raises(ValueError, match="lag time"):
        boltzflow.MaximumLikelihoodMSM().fit(np.array([0, 1, 0]))


def test_tica_and_msm_on_an_xtc_file_equal_the_command_line(root, tmp_path):
    """A Python session reads an XTC trajectory, runs TICA, k-means and an MSM; the command
    line on the same file gives the same numbers."""
    exe = os.environ.get("BOLTZFLOW_BIN", str(root / "target" / "release" / "boltzflow"))
    if not pathlib.Path(exe).exists():
        pytest.skip(f"no boltzflow binary at {exe} (set BOLTZFLOW_BIN)")
    system = boltzflow.System("double-well:a2=4,a1=0.5")
    x, _, _ = boltzflow.simulate(system, "overdamped", chains=1, steps=200_000, burn_in=0,
                                 stride=20, step_size=0.005, init="default", seed=4)
    # One "atom" (z: a product feature): an XTC file (stored to 10⁻³ nm).
    xtc = tmp_path / "traj.xtc"
    boltzflow.write_trajectory(str(xtc), np.column_stack([x, 0.1 * x[:, 0] * x[:, 1]]))
    traj = boltzflow.read_trajectory(str(xtc))
    assert traj.shape == (10_000, 3)

    tica = boltzflow.TICA(lagtime=5, dim=2).fit(traj).fetch_model()
    y = tica.transform(traj)
    dtraj = boltzflow.KMeans(20, fixed_seed=1).fit(y).fetch_model().transform(y)
    msm = boltzflow.MaximumLikelihoodMSM(reversible=True, lagtime=10).fit(dtraj).fetch_model()

    def cli(*args):
        subprocess.run([exe, "kinetics", *args], check=True, capture_output=True)

    cli("tica", "--trajs", str(xtc), "--lagtime", "5", "--dim", "2", "--out", str(tmp_path / "tica"))
    cli("cluster", "--trajs", str(tmp_path / "tica" / "projection.npy"), "--k", "20", "--seed", "1",
        "--out", str(tmp_path / "cl"))
    cli("msm", "--dtrajs", str(tmp_path / "cl" / "dtrajs.npy"), "--lagtime", "10", "--reversible",
        "--out", str(tmp_path / "msm"))
    np.testing.assert_array_equal(np.load(tmp_path / "tica" / "eigenvalues.npy"), tica.singular_values[:2])
    np.testing.assert_array_equal(np.load(tmp_path / "tica" / "projection.npy"), y)
    np.testing.assert_array_equal(np.load(tmp_path / "cl" / "dtrajs.npy"), dtraj)
    np.testing.assert_array_equal(np.load(tmp_path / "msm" / "transition_matrix.npy"), msm.transition_matrix)
    np.testing.assert_array_equal(np.load(tmp_path / "msm" / "timescales.npy"), msm.timescales(10))
    # The slow process is the barrier crossing: its timescale is far above the lag time.
    assert msm.timescales(1)[0] > 100
