"""Seeded train / validation / test splits of synthetic image-text-depth samples, generated on demand.

Seeding: sample ``index`` of ``split`` is drawn from ``numpy.random.SeedSequence([seed, SPLIT_STREAMS[split], index,
attempt])``; the split streams (train 0, val 1, test 2) are separate entropy words, so the three splits never share a
random stream whatever their sizes, and any sample can be regenerated alone (a trainer can cache it or not). The
default ``seed`` is :data:`DEFAULT_SEED`; ``attempt`` counts re-draws of a scene whose probe did not show (a pair
object hidden behind another, a backdrop covered by objects), so the result is still a pure function of
(seed, split, index, config, size).

A sample (:meth:`SyntheticDepthDataset.__getitem__`) is a dict of ``rgb`` float32 [3, H, W] in [0, 1], ``depth``
float32 [H, W] planar depth in meters along the optical axis (``max_depth`` where invalid), ``valid`` bool [H, W],
``ambiguous`` bool [H, W] (pixels whose depth only the caption fixes, see :mod:`.ambiguity`), ``caption`` str,
``intrinsics`` float32 [3, 3] (pinhole K, camera optical frame x right, y down, z forward, pixel centers at integer
coordinates) and ``family`` str (the scene family, for per-family scores). Arrays are torch tensors;
:func:`generate_sample` gives the numpy version with the scene graph.

:func:`write_split` dumps a split to a folder (``NNNNNN_rgb.png``, ``NNNNNN_depth.npy`` float32 meters,
``NNNNNN_masks.npz`` with ``valid`` and ``ambiguous``, and ``samples.jsonl`` with caption, K, family, probes and
facts); :func:`read_written_sample` reads one back.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from iris_model.errors import InputError

from .caption import caption_scene
from .families import SceneConfig, sample_scene
from .render import RenderResult, render
from .scene import SceneGraph

try:  # torch is a dependency of the training package, but the generator itself does not need it.
    import torch
    from torch.utils.data import Dataset
except ImportError:  # pragma: no cover - torch is installed in every supported environment
    torch = None  # type: ignore[assignment]
    Dataset = object  # type: ignore[assignment,misc]

DEFAULT_SEED = 20241125  # arXiv 2411.16750 (Iris)
SPLIT_STREAMS = {"train": 0, "val": 1, "test": 2}
MIN_PROBE_PIXELS = 40  # each pair object and the plain wall must cover at least this many pixels
MIN_VALID_FRACTION = 0.2
MAX_ATTEMPTS = 8
TEXT_KEYS = ("caption", "family")  # the sample's str entries; the others are arrays


@dataclass(frozen=True)
class SyntheticSample:
    """One generated sample, numpy arrays ``H x W`` (``rgb`` H x W x 3), plus the scene graph it came from."""

    rgb: np.ndarray
    depth: np.ndarray
    valid: np.ndarray
    ambiguous: np.ndarray
    caption: str
    intrinsics: np.ndarray
    scene: SceneGraph

    def as_dict(self) -> dict[str, Any]:
        """The trainer's sample dict with numpy arrays (rgb as [3, H, W])."""
        return {
            "rgb": np.ascontiguousarray(self.rgb.transpose(2, 0, 1)),
            "depth": self.depth,
            "valid": self.valid,
            "ambiguous": self.ambiguous,
            "caption": self.caption,
            "intrinsics": self.intrinsics,
            "family": self.scene.family,
        }


def _check_split(split: str) -> None:
    if split not in SPLIT_STREAMS:
        raise InputError(f"unknown split {split!r}; expected one of {tuple(SPLIT_STREAMS)}")


def sample_rng(seed: int, split: str, index: int, attempt: int = 0) -> np.random.Generator:
    """The generator for one sample (see the module docstring for the seeding scheme)."""
    _check_split(split)
    if index < 0:
        raise InputError(f"sample index must be >= 0, got {index}")
    return np.random.default_rng(np.random.SeedSequence([int(seed), SPLIT_STREAMS[split], int(index), attempt]))


def _probes_visible(scene: SceneGraph, result: RenderResult) -> bool:
    counts = result.pixel_counts()
    names = [p.name for p in scene.primitives]

    def count(name: str) -> int:
        i = names.index(name)
        return int(counts[i]) if i < len(counts) else 0

    if scene.pair is not None and min(count(n) for n in scene.pair) < MIN_PROBE_PIXELS:
        return False
    if "backdrop" in scene.probes:
        wall = next(p.name for p in scene.primitives if p.role == "backdrop")
        if count(wall) < 5 * MIN_PROBE_PIXELS:
            return False
    return True


def generate_sample(split: str, index: int, seed: int = DEFAULT_SEED, height: int = 192, width: int = 256,
                    config: SceneConfig | None = None, family: str | None = None,
                    probes: tuple[str, ...] | None = None) -> SyntheticSample:
    """Generate sample ``index`` of ``split`` (deterministic). ``family`` / ``probes`` force a scene type (tests,
    figures); ``config`` overrides the sampling distribution (its width/height are replaced by ``width``/``height``).
    """
    cfg = dataclasses.replace(config or SceneConfig(), width=width, height=height)
    scene = result = None
    for attempt in range(MAX_ATTEMPTS):
        rng = sample_rng(seed, split, index, attempt)
        scene = sample_scene(rng, cfg, family=family, probes=probes)
        result = render(scene)
        if result.valid.mean() >= MIN_VALID_FRACTION and _probes_visible(scene, result):
            break
    assert scene is not None and result is not None
    counts = result.pixel_counts()
    visible = {p.name for i, p in enumerate(scene.primitives) if i < len(counts) and counts[i] >= 25}
    caption = caption_scene(scene, rng, visible)
    return SyntheticSample(
        rgb=result.rgb,
        depth=result.depth,
        valid=result.valid,
        ambiguous=result.ambiguous,
        caption=caption,
        intrinsics=scene.camera.k().astype(np.float32),
        scene=scene,
    )


class SyntheticDepthDataset(Dataset):
    """A torch Dataset over one seeded split; item ``i`` is always the same sample (see the module docstring).

    ``cache_dir``: if given, samples are stored there as ``.npz`` on first use and read back afterwards (the key
    folder name encodes split, seed, size and config, so a changed setting never reads stale samples).
    """

    def __init__(self, split: str = "train", size: int = 2000, height: int = 192, width: int = 256,
                 seed: int = DEFAULT_SEED, config: SceneConfig | None = None,
                 cache_dir: str | Path | None = None) -> None:
        _check_split(split)
        if size < 1:
            raise InputError(f"size must be >= 1, got {size}")
        self.split, self.size, self.height, self.width, self.seed = split, int(size), int(height), int(width), seed
        self.config = dataclasses.replace(config or SceneConfig(), width=self.width, height=self.height)
        self.cache_dir: Path | None = None
        if cache_dir is not None:
            key = hashlib.sha1(repr(self.config).encode()).hexdigest()[:10]
            self.cache_dir = Path(cache_dir) / f"{split}_s{seed}_{width}x{height}_{key}"
            self.cache_dir.mkdir(parents=True, exist_ok=True)

    def __len__(self) -> int:
        return self.size

    def sample(self, index: int) -> SyntheticSample:
        """The numpy sample with its scene graph (always generated, never cached)."""
        if not 0 <= index < self.size:
            raise IndexError(f"index {index} out of range for a split of {self.size}")
        return generate_sample(self.split, index, self.seed, self.height, self.width, self.config)

    def _arrays(self, index: int) -> dict[str, Any]:
        path = self.cache_dir / f"{index:06d}.npz" if self.cache_dir is not None else None
        if path is not None and path.exists():
            with np.load(path, allow_pickle=False) as z:
                if "family" in z.files:  # else written before samples held their family: regenerated below
                    return {
                        "rgb": z["rgb"],
                        "depth": z["depth"], "valid": z["valid"], "ambiguous": z["ambiguous"],
                        "caption": str(z["caption"]), "intrinsics": z["intrinsics"], "family": str(z["family"]),
                    }
        d = self.sample(index).as_dict()
        if path is not None:
            # One temporary name per process: loader workers, DDP ranks or two runs may share a cache and
            # write the same sample at once; the last rename wins, and both wrote the same arrays.
            tmp = path.with_suffix(f".{os.getpid()}.tmp.npz")
            arrays: dict[str, Any] = {k: np.asarray(v) for k, v in d.items()}
            np.savez_compressed(tmp, **arrays)
            tmp.replace(path)
        return d

    def __getitem__(self, index: int) -> dict[str, Any]:
        if index < 0:
            index += self.size
        if not 0 <= index < self.size:
            raise IndexError(f"index {index} out of range for a split of {self.size}")
        d = self._arrays(index)
        if torch is None:  # pragma: no cover
            return d
        return {k: (v if k in TEXT_KEYS else torch.from_numpy(np.ascontiguousarray(v))) for k, v in d.items()}


# ------------------------------------------------------------------------------------------------ writing to disk


def _write_one(args: tuple[Path, str, int, int, int, int, SceneConfig | None]) -> dict[str, Any]:
    from PIL import Image

    out, split, index, seed, height, width, config = args
    s = generate_sample(split, index, seed, height, width, config)
    stem = f"{index:06d}"
    Image.fromarray((s.rgb * 255.0 + 0.5).astype(np.uint8)).save(out / f"{stem}_rgb.png")
    np.save(out / f"{stem}_depth.npy", s.depth)
    np.savez_compressed(out / f"{stem}_masks.npz", valid=s.valid, ambiguous=s.ambiguous)
    return {
        "index": index,
        "rgb": f"{stem}_rgb.png",
        "depth": f"{stem}_depth.npy",
        "masks": f"{stem}_masks.npz",
        "caption": s.caption,
        "intrinsics": s.intrinsics.tolist(),
        "family": s.scene.family,
        "probes": list(s.scene.probes),
        "scale": s.scene.scale,
        "facts": {k: round(v, 4) for k, v in s.scene.facts.items()},
        "ambiguous_fraction": float(s.ambiguous.mean()),
    }


def write_split(out_dir: str | Path, split: str, size: int, seed: int = DEFAULT_SEED, height: int = 192,
                width: int = 256, config: SceneConfig | None = None, workers: int = 1) -> Path:
    """Write samples 0..size-1 of a split to ``out_dir`` (see the module docstring); returns the JSONL path."""
    _check_split(split)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    jobs = [(out, split, i, seed, height, width, config) for i in range(size)]
    if workers > 1:
        import multiprocessing as mp

        with mp.get_context("spawn").Pool(workers) as pool:
            rows = pool.map(_write_one, jobs, chunksize=8)
    else:
        rows = [_write_one(j) for j in jobs]
    meta = out / "samples.jsonl"
    with meta.open("w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row) + "\n")
    (out / "split.json").write_text(json.dumps({"split": split, "size": size, "seed": seed, "height": height,
                                                "width": width, "config": repr(config or SceneConfig())}, indent=1))
    return meta


def read_written_sample(out_dir: str | Path, index: int) -> dict[str, Any]:
    """One sample written by :func:`write_split`, as the numpy sample dict (rgb [3, H, W] float32)."""
    from PIL import Image

    out = Path(out_dir)
    with (out / "samples.jsonl").open(encoding="utf-8") as fh:
        row = next((r for r in map(json.loads, fh) if r["index"] == index), None)
    if row is None:
        raise KeyError(f"sample {index} not in {out / 'samples.jsonl'}")
    rgb = np.asarray(Image.open(out / row["rgb"]).convert("RGB"), dtype=np.float32) / 255.0
    with np.load(out / row["masks"], allow_pickle=False) as z:
        valid, ambiguous = z["valid"], z["ambiguous"]
    return {
        "rgb": np.ascontiguousarray(rgb.transpose(2, 0, 1)),
        "depth": np.load(out / row["depth"], allow_pickle=False),
        "valid": valid,
        "ambiguous": ambiguous,
        "caption": row["caption"],
        "intrinsics": np.asarray(row["intrinsics"], dtype=np.float32),
    }
