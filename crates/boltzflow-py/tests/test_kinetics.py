"""TICA with deeptime's API shape gives deeptime 0.4.5's numbers (committed fixture)."""
import json

import numpy as np

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
