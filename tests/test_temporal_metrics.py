"""Temporal metrics: TAE (Video Depth Anything's definition) and per-frame vs whole-sequence alignment."""

from __future__ import annotations

import numpy as np
import pytest

from iris_model import InputError
from iris_model.metrics import reproject_depth, sequence_metrics, temporal_alignment_error

H, W = 40, 60
K = np.array([[50.0, 0.0, 29.5], [0.0, 50.0, 19.5], [0.0, 0.0, 1.0]])


def _pose(tx: float = 0.0, ty: float = 0.0, tz: float = 0.0, yaw_deg: float = 0.0) -> np.ndarray:
    """Camera-to-world: a rotation about the camera's y axis (down) and a translation, optical frame."""
    a = np.radians(yaw_deg)
    pose = np.eye(4)
    pose[:3, :3] = [[np.cos(a), 0, np.sin(a)], [0, 1, 0], [-np.sin(a), 0, np.cos(a)]]
    pose[:3, 3] = [tx, ty, tz]
    return pose


def _box_room_depth(pose: np.ndarray) -> np.ndarray:
    """Ray-cast planar depth of the inside of an axis-aligned box room [-3, 3] x [-2, 2] x [-1, 8] (meters)."""
    v, u = np.mgrid[0:H, 0:W]
    rays = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones((H, W))], axis=-1)
    dirs = rays @ pose[:3, :3].T
    origin = pose[:3, 3]
    lo, hi = np.array([-3.0, -2.0, -1.0]), np.array([3.0, 2.0, 8.0])
    with np.errstate(divide="ignore"):
        t_hi = np.where(dirs > 0, (hi - origin) / dirs, np.where(dirs < 0, (lo - origin) / dirs, np.inf))
    return t_hi.min(axis=-1)  # ray parameter along the z=1-normalized camera ray = planar depth


def test_tae_is_zero_for_a_static_scene_with_identical_predictions():
    depth = _box_room_depth(_pose())
    seq = np.stack([depth] * 4)
    poses = np.stack([_pose()] * 4)
    assert temporal_alignment_error(seq, K, poses) == 0.0
    gts = seq.copy()
    preds = (seq - 1.0) / 7.0  # affine-invariant prediction, one affine for every frame
    m = sequence_metrics(preds, gts, K, poses)
    assert m["tae"] == pytest.approx(0.0, abs=1e-9)
    assert m["abs_rel_seq"] == pytest.approx(0.0, abs=1e-9)


@pytest.mark.parametrize(
    ("pose2", "d1", "d2", "expected"),
    [
        # forward 0.5 m facing a wall at 2 m: the wall is at 1.5 m from frame 2, predicted 1.6:
        # 1 -> 2: |1.6 - 1.5| / 1.6 = 0.0625; 2 -> 1: 1.6 + 0.5 = 2.1 against 2.0: 0.05; mean x 100
        (_pose(tz=0.5), 2.0, 1.6, 100 * (0.0625 + 0.05) / 2),
        # sideways 0.2 m (fx = 50: a 5 px shift): the wall stays at 2 m, predicted 2.5 in frame 2:
        # 1 -> 2: 0.5 / 2.5 = 0.2; 2 -> 1: 0.5 / 2.0 = 0.25
        (_pose(tx=0.2), 2.0, 2.5, 100 * (0.2 + 0.25) / 2),
    ],
)
def test_tae_matches_a_hand_computed_pair(pose2, d1, d2, expected):
    seq = np.stack([np.full((H, W), d1), np.full((H, W), d2)])
    poses = np.stack([_pose(), pose2])
    assert temporal_alignment_error(seq, K, poses) == pytest.approx(expected, rel=1e-9)


def test_reprojection_follows_the_pose():
    # a sideways step of 0.2 m at 2 m and fx = 50 moves the wall by exactly 5 px to the left
    wall = np.full((H, W), 2.0)
    wall[:, 30] = 1.0  # a thin post nearer at 1 m: it moves 10 px and hides the wall behind it
    proj = reproject_depth(wall, K, np.linalg.inv(_pose(tx=0.2)))
    assert np.all(proj[:, W - 5:] == 0)  # nothing seen there from frame 1
    assert np.all(proj[:, 20] == 1.0)  # the post, 10 px over, nearest wins over the wall point landing there
    assert np.all(proj[:, 25] == 0)  # the wall behind the post: not seen from frame 1
    assert np.all(proj[:, 26] == 2.0)


def test_tae_of_a_moving_camera_with_exact_depth_is_zero():
    poses = np.stack([_pose(tz=0.1 * i, yaw_deg=2.0 * i) for i in range(4)])
    seq = np.stack([_box_room_depth(p) for p in poses])
    # rounding to the nearest pixel leaves a little error on slanted walls (0.84 here, halving with each
    # doubling of the resolution), nothing more
    assert temporal_alignment_error(seq, K, poses) < 1.0
    wrong = seq.copy()
    wrong[2] *= 1.2  # one frame 20 % too far
    assert temporal_alignment_error(wrong, K, poses) > 5.0


def test_a_scale_jump_shows_after_sequence_alignment_only():
    poses = np.stack([_pose(tz=0.1 * i) for i in range(4)])
    gts = np.stack([_box_room_depth(p) for p in poses])
    preds = (gts - 1.0) / 7.0
    preds[2] = (gts[2] - 0.5) / 3.0  # the per-frame normalization changed on frame 2
    m = sequence_metrics(preds, gts, K, poses)
    assert m["abs_rel_frame"] == pytest.approx(0.0, abs=1e-9)
    assert m["delta1_frame"] == 1.0
    assert m["abs_rel_seq"] > 0.05
    assert m["tae"] > 5.0
    steady = sequence_metrics((gts - 1.0) / 7.0, gts, K, poses)
    assert steady["abs_rel_seq"] == pytest.approx(0.0, abs=1e-9) and steady["tae"] < 1.0


def test_bad_shapes_are_rejected():
    with pytest.raises(InputError):
        temporal_alignment_error(np.ones((1, H, W)), K, np.stack([_pose()]))
    with pytest.raises(InputError):
        temporal_alignment_error(np.ones((2, H, W)), K, np.stack([_pose()]))
    with pytest.raises(InputError):
        sequence_metrics(np.ones((2, H, W)), np.ones((3, H, W)))
