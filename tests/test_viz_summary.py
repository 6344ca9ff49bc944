"""The one-page summary figure from a synthetic run."""

from __future__ import annotations

import numpy as np
import pytest
from test_viz_geometry import write_synthetic_run

from mvhand.core.data import Hands3D
from mvhand.viz.rundata import load_run
from mvhand.viz.summary import completeness_rows, summary_figure

pytest.importorskip("matplotlib")


def test_completeness_rows_count_present_joints(tmp_path):
    write_synthetic_run(tmp_path / "run", n_frames=6, n_cameras=2)
    run = load_run(tmp_path / "run")
    kp = run.keypoints2d
    data, names = completeness_rows(run.hands3d, kp)
    assert names[:2] == [f"{kp.cameras[0]} left", f"{kp.cameras[0]} right"]
    assert names[-2:] == ["3D left", "3D right"] and data.shape == (2 * 2 + 2, 6)
    expected = np.isfinite(kp.keypoints_px[1, :, 0]).all(-1).mean(-1)
    np.testing.assert_allclose(data[2], expected)
    np.testing.assert_allclose(data[-2:], 1.0)  # the stored 3D is complete
    h3d = run.hands3d
    pts = h3d.keypoints3d.copy()
    pts[2, 1, :7] = np.nan
    holed = Hands3D(pts, h3d.reprojection_error_px, h3d.n_views, h3d.score, h3d.units)
    data, _ = completeness_rows(holed, None)
    assert data.shape == (2, 6) and data[1, 2] == pytest.approx(14 / 21)


def test_summary_figure_is_a_png_page(tmp_path):
    write_synthetic_run(tmp_path / "run", n_frames=20, n_cameras=3)
    run = load_run(tmp_path / "run")
    path = summary_figure(run.hands3d, run.keypoints2d, tmp_path / "s" / "summary.png",
                          "synthetic", fps=run.fps)  # fmt: skip
    import matplotlib.image as mpimg

    img = mpimg.imread(path)
    assert img.shape[0] > 600 and img.shape[1] > 900
    assert img[..., :3].std() > 0.05  # drawn, not blank
    summary_figure(run.hands3d, None, tmp_path / "no2d.png")  # without 2D keypoints
    assert (tmp_path / "no2d.png").stat().st_size > 10_000
