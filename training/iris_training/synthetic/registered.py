"""The synthetic splits as a training/evaluation dataset named ``synthetic``.

Import this module (a config's ``imports: [iris_training.synthetic.registered]``) to register it. ``root`` is
the sample cache folder (``""`` = no cache); options: ``split``, ``size``, ``height``, ``width``, ``seed``,
``with_captions: false`` to blank every caption (the text-free baseline model of the language ablation), and
``scene``: overrides of :class:`~iris_training.synthetic.families.SceneConfig`'s sampling distribution (e.g.
``{pair_prob: 0.9, backdrop_prob: 0.9}`` for a training set rich in ambiguity probes; the held-out splits are
scored with the defaults).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

from ..config import build_dataclass
from ..data.registry import register_dataset
from ..errors import ConfigError
from .dataset import DEFAULT_SEED, SyntheticDepthDataset
from .families import SceneConfig


class KeyedSynthetic(Dataset):
    """Adds the training contract's ``key`` and optionally drops captions; everything else as generated."""

    min_depth = 1e-3
    max_depth = 80.0

    def __init__(self, base: SyntheticDepthDataset, captions: bool = True) -> None:
        self.base, self.captions = base, captions

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, index: int) -> dict[str, Any]:
        sample = dict(self.base[index])
        sample["key"] = f"synthetic/{self.base.split}/{index:06d}"
        if not self.captions:
            sample["caption"] = ""
        return sample


def open_synthetic(
    root: str | Path = "",
    captions: dict[str, str] | None = None,
    *,
    split: str = "train",
    size: int = 2000,
    height: int = 96,
    width: int = 128,
    seed: int = DEFAULT_SEED,
    with_captions: bool = True,
    scene: dict[str, Any] | None = None,
) -> KeyedSynthetic:
    del captions  # the generator writes its own captions from the scene graph
    config = None
    if scene:
        if {"width", "height"} & set(scene):
            raise ConfigError("synthetic.scene: the image size is the dataset's own height and width options")
        config = build_dataclass(SceneConfig, scene, "synthetic.scene")
    base = SyntheticDepthDataset(split, size, height, width, seed, config=config,
                                 cache_dir=str(root) if str(root) else None)
    return KeyedSynthetic(base, captions=with_captions)


register_dataset("synthetic", open_synthetic)
