"""Synthetic video: seeded trajectories with ground-truth depth, intrinsics, poses (optical frame), captions."""

from __future__ import annotations

import numpy as np
import pytest
from iris_training.synthetic.video import TRAJECTORIES, camera_pose, generate_sequence

from iris_model import InputError
from iris_model.metrics import temporal_alignment_error

SMALL = {"num_frames": 8, "height": 48, "width": 64}


@pytest.fixture(scope="module")
def sequences():
    return {kind: generate_sequence("test", 0, trajectory=kind, **SMALL) for kind in TRAJECTORIES}


def test_sequences_are_seeded_and_splits_differ():
    a = generate_sequence("val", 3, **SMALL)
    b = generate_sequence("val", 3, **SMALL)
    c = generate_sequence("test", 3, **SMALL)
    assert a.trajectory == b.trajectory == c.trajectory == TRAJECTORIES[3 % 4]
    for fa, fb in zip(a.frames, b.frames, strict=True):
        assert np.array_equal(fa.rgb, fb.rgb) and np.array_equal(fa.depth, fb.depth)
        assert np.array_equal(fa.pose, fb.pose) and fa.caption == fb.caption and fa.stamp_s == fb.stamp_s
    assert not np.array_equal(a.frames[0].rgb, c.frames[0].rgb)


def test_frames_carry_ground_truth_at_a_robot_rate(sequences):
    for kind, seq in sequences.items():
        assert len(seq.frames) == SMALL["num_frames"], kind
        assert seq.rate_hz in (10.0, 15.0, 20.0, 30.0)
        stamps = np.array([f.stamp_s for f in seq.frames])
        assert np.allclose(np.diff(stamps), 1.0 / seq.rate_hz)
        for f in seq.frames:
            assert f.rgb.shape == (48, 64, 3) and f.rgb.dtype == np.float32
            assert f.depth.shape == (48, 64) and f.valid.mean() >= 0.2
            assert f.depth[f.valid].min() >= 0.3 * seq.scenes[f.segment].scale  # the clearance held
            assert f.intrinsics.shape == (3, 3) and f.intrinsics[2, 2] == 1.0
            r = f.pose[:3, :3]
            assert np.allclose(r @ r.T, np.eye(3), atol=1e-9) and np.linalg.det(r) == pytest.approx(1.0)
            assert f.caption
        # a robot's motion per frame: at most 2 m/s, and 90 deg/s (the turn) at the frame rate
        pairs = [(a, b) for a, b in zip(seq.frames[:-1], seq.frames[1:], strict=True) if a.segment == b.segment]
        steps = [np.linalg.norm(b.pose[:3, 3] - a.pose[:3, 3]) for a, b in pairs]
        angles = [np.degrees(np.arccos(np.clip((np.trace(a.pose[:3, :3].T @ b.pose[:3, :3]) - 1) / 2, -1, 1)))
                  for a, b in pairs]
        assert max(steps) <= 2.0 * seq.scenes[0].scale / seq.rate_hz + 1e-9, kind
        assert max(angles) <= 90.0 / seq.rate_hz + 1e-6, kind
        assert max(steps) > 0 or max(angles) > 0.1, kind  # it moves


def test_pose_is_camera_to_world_of_the_optical_frame(sequences):
    cam = sequences["walk"].scenes[0].camera
    pose = camera_pose(cam)
    world = np.array([[3.0, 0.5, 1.0], [2.0, -1.0, 0.2]])
    in_cam = cam.to_camera(world)
    assert np.allclose(in_cam @ pose[:3, :3].T + pose[:3, 3], world)
    # optical z is the heading (world x forward at yaw 0), optical y points down (world -z) at zero pitch
    level = type(cam)(64, 48, 50.0, 50.0, 31.5, 23.5, (0.0, 0.0, 1.0))
    assert np.allclose(camera_pose(level)[:3, :3], [[0, 0, 1], [-1, 0, 0], [0, -1, 0]])


def test_ground_truth_depth_is_consistent_under_the_poses(sequences):
    for kind in ("walk", "pan", "orbit"):
        seq = sequences[kind]
        depth = np.stack([np.where(f.valid, f.depth, 0.0) for f in seq.frames])
        poses = np.stack([f.pose for f in seq.frames])
        k = seq.frames[0].intrinsics
        tae = temporal_alignment_error(depth, k, poses)
        assert tae < 2.0, kind  # only rounding to pixels on slanted surfaces is left
        # the same depth under a wrong motion (the trajectory reversed) is clearly inconsistent
        assert temporal_alignment_error(depth, k, poses[::-1]) > tae, kind


def test_a_turn_enters_a_new_room_with_its_own_caption(sequences):
    seq = sequences["turn"]
    segments = seq.segments()
    assert len(segments) == 2 and len(seq.scenes) == 2 and seq.scenes[1].family == "room"
    assert segments[1][0].caption != segments[0][0].caption
    assert {f.caption for f in segments[0]} == {segments[0][0].caption}  # one description per segment
    cut = np.abs(segments[1][0].rgb - segments[0][-1].rgb).mean()
    within = max(np.abs(b.rgb - a.rgb).mean() for a, b in zip(segments[0][:-1], segments[0][1:], strict=True))
    assert cut > within


def test_bad_arguments():
    with pytest.raises(InputError):
        generate_sequence("test", 0, trajectory="fly", **SMALL)
    with pytest.raises(InputError):
        generate_sequence("holdout", 0, **SMALL)
    with pytest.raises(InputError):
        generate_sequence("test", 0, num_frames=1)
