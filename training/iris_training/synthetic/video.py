"""Synthetic video: camera trajectories through the generator's scenes, with per-frame ground truth.

A :class:`VideoSequence` is a list of :class:`VideoFrame` (RGB, planar depth in meters, valid mask, intrinsics,
camera-to-world pose of the camera optical frame, stamp, caption) along one trajectory:

- ``walk``: forward along the heading at a robot's walking speed, with a slight sway of the heading;
- ``pan``: turning in place;
- ``orbit``: circling a point in front of the camera while looking at it;
- ``turn``: walking, then turning away fast, and through a doorway into a *new room* (another scene, another
  caption): the frames after the turn have ``segment`` 1 and their poses are in that scene's world.

Speeds are a robot's: about 0.3-1.2 m/s indoors (0.05-0.2 m/s for an arm over a table, up to 2 m/s outdoors),
turning at 15-45 deg/s, at a frame rate of 10, 15, 20 or 30 Hz. A trajectory that would take the camera within
``clearance`` of any surface is slowed down, then redrawn.

Frames and units as in :mod:`.scene`: world x forward, y left, z up; poses map the camera optical frame (x right,
y down, z forward; REP 103) to the world, 4x4, meters; stamps in seconds. Captions describe the first frame of
each segment (a robot's description changes rarely, not every frame).

Seeding: sequence ``index`` of ``split`` is drawn from ``SeedSequence([seed, VIDEO_STREAMS[split], index,
attempt])``; the video streams (100, 101, 102) are disjoint from the image splits' (0, 1, 2), so no video ever
shares a scene with an image sample. Sequences are generated on demand; nothing is stored.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from iris_model.errors import InputError

from .caption import caption_scene
from .dataset import DEFAULT_SEED, SPLIT_STREAMS
from .families import SceneConfig, sample_scene
from .render import Renderer, RenderResult
from .scene import Camera, SceneGraph

TRAJECTORIES = ("walk", "pan", "orbit", "turn")
VIDEO_STREAMS = {split: 100 + stream for split, stream in SPLIT_STREAMS.items()}
FRAME_RATES_HZ = (10.0, 15.0, 20.0, 30.0)
MAX_ATTEMPTS = 12
MIN_VALID_FRACTION = 0.2
# Linear speeds (m/s) per family; turning speeds (deg/s) for all.
WALK_SPEED = {"room": (0.3, 1.0), "corridor": (0.5, 1.2), "tabletop": (0.05, 0.2), "outdoor": (0.8, 2.0)}
TURN_RATE_DEG_S = (15.0, 45.0)


@dataclass(frozen=True)
class VideoFrame:
    """One frame: ``rgb`` H x W x 3 float32 in [0, 1]; ``depth`` H x W float32 planar meters (``valid`` marks the
    pixels that hit geometry within range); ``intrinsics`` 3x3 float64 K; ``pose`` 4x4 float64 camera-to-world
    (optical frame); ``stamp_s`` seconds from the first frame; ``segment`` 0, or 1 after a ``turn``'s cut."""

    rgb: np.ndarray
    depth: np.ndarray
    valid: np.ndarray
    intrinsics: np.ndarray
    pose: np.ndarray
    stamp_s: float
    caption: str
    segment: int = 0


@dataclass(frozen=True)
class VideoSequence:
    """A trajectory's frames, its kind, frame rate (Hz), speed (m/s or deg/s) and the scene of each segment."""

    frames: tuple[VideoFrame, ...]
    trajectory: str
    rate_hz: float
    speed: float
    scenes: tuple[SceneGraph, ...]

    def segments(self) -> list[list[VideoFrame]]:
        """The frames split where the scene changes (one list per segment, in order)."""
        out: list[list[VideoFrame]] = []
        for f in self.frames:
            if not out or out[-1][-1].segment != f.segment:
                out.append([])
            out[-1].append(f)
        return out


def camera_pose(cam: Camera) -> np.ndarray:
    """4x4 camera-to-world transform of the optical frame (x right, y down, z forward) in meters."""
    pose = np.eye(4)
    pose[:3, :3] = cam.rotation()
    pose[:3, 3] = cam.position
    return pose


def video_rng(seed: int, split: str, index: int, attempt: int = 0) -> np.random.Generator:
    if split not in VIDEO_STREAMS:
        raise InputError(f"split must be one of {sorted(VIDEO_STREAMS)}, got {split!r}")
    return np.random.default_rng(np.random.SeedSequence([seed, VIDEO_STREAMS[split], index, attempt]))


def _heading(yaw_deg: float) -> np.ndarray:
    a = math.radians(yaw_deg)
    return np.array([math.cos(a), math.sin(a), 0.0])


def _cameras(kind: str, cam: Camera, n: int, dt: float, speed: float, sign: float, target: np.ndarray,
             rng: np.random.Generator) -> list[Camera]:
    """The camera of each of ``n`` frames along one trajectory (``turn`` here is its first, in-room part)."""
    p0 = np.asarray(cam.position, dtype=np.float64)
    out = []
    if kind == "orbit":
        rel = p0 - target
        radius = math.hypot(rel[0], rel[1])
        phase = math.atan2(rel[1], rel[0])
    sway_amp, sway_hz = float(rng.uniform(0.5, 2.0)), float(rng.uniform(0.3, 0.8))
    for i in range(n):
        t = i * dt
        if kind == "walk":
            yaw = cam.yaw_deg + sway_amp * math.sin(2 * math.pi * sway_hz * t)
            pos = p0 + _heading(cam.yaw_deg) * speed * t
        elif kind == "pan":
            yaw, pos = cam.yaw_deg + sign * speed * t, p0
        elif kind == "orbit":
            a = phase + sign * math.radians(speed) * t
            pos = np.array([target[0] + radius * math.cos(a), target[1] + radius * math.sin(a), p0[2]])
            yaw = math.degrees(math.atan2(target[1] - pos[1], target[0] - pos[0]))
        else:  # turn: walk the first 60 %, then turn away at 90 deg/s
            walk_t = 0.6 * n * dt
            pos = p0 + _heading(cam.yaw_deg) * speed * min(t, walk_t)
            yaw = cam.yaw_deg + sign * 90.0 * max(0.0, t - walk_t)
        out.append(replace(cam, position=tuple(float(v) for v in pos), yaw_deg=float(yaw)))
    return out


def _render_frames(scene: SceneGraph, cams: list[Camera], clearance: float) -> list[RenderResult] | None:
    """Render each camera of a trajectory; None when one comes too close to a surface or sees too little."""
    renderer = Renderer(scene)
    out = []
    for i, cam in enumerate(cams):
        renderer.scene = replace(scene, camera=cam, noise_seed=(scene.noise_seed + i) % 2**31)
        res = renderer.render()
        near = res.valid & (res.depth < clearance * scene.scale)
        if res.valid.mean() < MIN_VALID_FRACTION or near.mean() > 0.002:
            return None
        out.append(res)
    return out


def _target(scene: SceneGraph, first: RenderResult) -> np.ndarray:
    """The point an orbit circles: what the image center sees, 1.5-5 m (times the scene scale) ahead."""
    cam = scene.camera
    d = float(np.median(first.depth[cam.height // 3 : 2 * cam.height // 3, cam.width // 3 : 2 * cam.width // 3]))
    d = min(max(d, 1.5 * scene.scale), 5.0 * scene.scale)
    forward = _heading(cam.yaw_deg)
    return np.asarray(cam.position) + forward * d


def _segment(scene: SceneGraph, kind: str, n: int, dt: float, speed: float, sign: float,
             rng: np.random.Generator, clearance: float) -> tuple[list[RenderResult], list[Camera], float] | None:
    """Frames and cameras of one trajectory in one scene, and the speed used: slowed down (halved, twice at
    most) until the camera keeps its clearance; None when even that fails."""
    target = _target(scene, Renderer(scene).render())
    for _ in range(3):
        cams = _cameras(kind, scene.camera, n, dt, speed, sign, target, rng)
        results = _render_frames(scene, cams, clearance)
        if results is not None:
            return results, cams, speed
        speed /= 2.0
    return None


def _new_room(cfg: SceneConfig, rng: np.random.Generator, speed_m_s: float, n: int, dt: float,
              clearance: float) -> tuple[SceneGraph, list[RenderResult], list[Camera]] | None:
    """The room a ``turn`` enters: another room scene, walked through at the same speed."""
    room = sample_scene(rng, cfg, family="room")
    got = _segment(room, "walk", n, dt, speed_m_s * room.scale, 1.0, rng, clearance)
    return None if got is None else (room, got[0], got[1])


def _frames(scene: SceneGraph, results: list[RenderResult], cams: list[Camera], t0: float, dt: float,
            caption: str, segment: int) -> list[VideoFrame]:
    return [
        VideoFrame(rgb=r.rgb, depth=r.depth, valid=r.valid, intrinsics=scene.camera.k(), pose=camera_pose(c),
                   stamp_s=t0 + i * dt, caption=caption, segment=segment)
        for i, (r, c) in enumerate(zip(results, cams, strict=True))
    ]


def _caption(scene: SceneGraph, first: RenderResult, rng: np.random.Generator) -> str:
    counts = first.pixel_counts()
    visible = {p.name for i, p in enumerate(scene.primitives) if i < len(counts) and counts[i] >= 25}
    return caption_scene(scene, rng, visible)


def generate_sequence(
    split: str,
    index: int,
    num_frames: int = 30,
    seed: int = DEFAULT_SEED,
    height: int = 192,
    width: int = 256,
    trajectory: str | None = None,
    family: str | None = None,
    rate_hz: float | None = None,
    clearance: float = 0.3,
    config: SceneConfig | None = None,
) -> VideoSequence:
    """Sequence ``index`` of ``split`` (deterministic): ``num_frames`` frames along one trajectory.

    ``trajectory`` / ``family`` / ``rate_hz`` None draw them (trajectories in turn by index, so that any 4
    consecutive sequences hold each kind once); ``config`` overrides the scene distribution (its size is
    replaced by ``width`` x ``height``). ``clearance``: nearest distance (m, before the scene's scale probe) the
    camera keeps from any surface in view.
    """
    if trajectory is not None and trajectory not in TRAJECTORIES:
        raise InputError(f"trajectory must be one of {TRAJECTORIES}, got {trajectory!r}")
    if not isinstance(num_frames, int) or num_frames < 2:
        raise InputError(f"num_frames must be an int >= 2, got {num_frames!r}")
    if rate_hz is not None and not rate_hz > 0:
        raise InputError(f"rate_hz must be > 0, got {rate_hz}")
    kind = trajectory or TRAJECTORIES[index % len(TRAJECTORIES)]
    cfg = replace(config or SceneConfig(), width=width, height=height)
    for attempt in range(MAX_ATTEMPTS):
        rng = video_rng(seed, split, index, attempt)
        rate = rate_hz or float(rng.choice(FRAME_RATES_HZ))
        dt = 1.0 / rate
        scene = sample_scene(rng, cfg, family=family)
        sign = 1.0 if rng.random() < 0.5 else -1.0
        if kind in ("walk", "turn"):
            lo, hi = WALK_SPEED[scene.family]
            speed = float(rng.uniform(lo, hi)) * scene.scale
        else:
            speed = float(rng.uniform(*TURN_RATE_DEG_S))
        n_first = num_frames if kind != "turn" else max(1, (num_frames * 2) // 3)  # then the new room
        got = _segment(scene, kind, n_first, dt, speed, sign, rng, clearance)
        if got is None:
            continue
        results, cams, speed = got
        frames = _frames(scene, results, cams, 0.0, dt, _caption(scene, results[0], rng), 0)
        scenes = [scene]
        if kind == "turn":
            new = _new_room(cfg, rng, speed / scene.scale, num_frames - n_first, dt, clearance)
            if new is None:
                continue
            room, room_results, room_cams = new
            frames += _frames(room, room_results, room_cams, n_first * dt, dt,
                              _caption(room, room_results[0], rng), 1)
            scenes.append(room)
        return VideoSequence(tuple(frames), kind, rate, speed, tuple(scenes))
    raise RuntimeError(f"no {kind} trajectory kept its clearance in {MAX_ATTEMPTS} scenes (split {split}, {index})")
