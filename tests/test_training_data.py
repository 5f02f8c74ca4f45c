"""Dataset readers on small files written in each real on-disk format: values, units, masks, intrinsics."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("iris_training", reason="the training package is not installed (pip install -e training)")

from iris_training.data import check_sample, collate_samples
from iris_training.data.mixing import MixBatchSampler, TrainingMix
from iris_training.data.registry import open_dataset
from iris_training.data.transforms import AugmentConfig, augment, crop_sample, hflip_sample, resize_sample
from iris_training.errors import ConfigError, DataError


def _write_rgb(path: Path, h: int, w: int, seed: int = 0, value: int | None = None) -> np.ndarray:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    arr = np.full((h, w, 3), value, np.uint8) if value is not None else rng.integers(0, 256, (h, w, 3), np.uint8)
    Image.fromarray(arr).save(path)
    return arr


def _write_png16(path: Path, arr: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr.astype(np.uint16)).save(path)


def _write_h5(path: Path, arr: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w") as f:
        f.create_dataset("dataset", data=arr)


# ---------------------------------------------------------------------------------------------- HyperSim
def _hypersim_frame(root: Path, scene: str, h: int, w: int, distance: np.ndarray, jpg: bool = True) -> None:
    images = root / scene / "images"
    if jpg:
        _write_rgb(images / "scene_cam_00_final_preview" / "frame.0000.tonemap.jpg", h, w, value=128)
    else:
        _write_h5(images / "scene_cam_00_final_hdf5" / "frame.0000.color.hdf5", np.full((h, w, 3), 0.5, np.float16))
    _write_h5(images / "scene_cam_00_geometry_hdf5" / "frame.0000.depth_meters.hdf5", distance.astype(np.float16))


def test_hypersim_distance_becomes_planar_depth_at_the_corner(tmp_path):
    h, w = 768, 1024  # HyperSim's resolution; the default camera has a 60 degree horizontal field of view
    distance = np.full((h, w), 10.0, np.float32)
    distance[5, 7] = np.nan
    _hypersim_frame(tmp_path, "ai_001_001", h, w, distance)
    ds = open_dataset("hypersim", tmp_path)
    s = ds[0]
    check_sample(s)
    f = 886.81  # = 512 / tan(30 deg), the focal length Marigold uses for HyperSim
    dx, dy = 0 - 511.5, 0 - 383.5
    expected_corner = 10.0 * f / np.sqrt(f * f + dx * dx + dy * dy)
    assert s["depth"][0, 0] == pytest.approx(expected_corner, rel=1e-4)
    assert s["depth"][-1, -1] == pytest.approx(expected_corner, rel=1e-4)  # symmetric camera
    assert expected_corner < 8.2  # clearly not the distance itself (10 m)
    assert not s["valid"][5, 7] and s["valid"][0, 0] and s["valid"].sum() == h * w - 1
    np.testing.assert_allclose(s["intrinsics"], [[f, 0, 511.5], [0, f, 383.5], [0, 0, 1]], rtol=1e-4)
    assert s["key"] == "ai_001_001/images/scene_cam_00_final_preview/frame.0000.tonemap.jpg"
    assert np.abs(s["rgb"] - 128 / 255).max() < 0.02


def test_hypersim_tilt_shift_camera_from_the_scene_csv(tmp_path):
    h, w = 48, 64
    rng = np.random.default_rng(1)
    distance = rng.uniform(2.0, 9.0, (h, w)).astype(np.float16).astype(np.float32)
    _hypersim_frame(tmp_path, "ai_002_003", h, w, distance)
    m = np.array([[0.6, 0.0, 0.15], [0.0, 0.45, -0.1], [0.0, 0.0, -1.0]])
    cols = ["scene_name"] + [f"M_cam_from_uv_{r}{c}" for r in range(3) for c in range(3)]
    row = ["ai_002_003"] + [repr(float(v)) for v in m.reshape(-1)]
    (tmp_path / "metadata_camera_parameters.csv").write_text(",".join(cols) + "\n" + ",".join(row) + "\n")
    s = open_dataset("hypersim", tmp_path)[0]
    # Back-project every pixel with the reported K and planar depth: its distance must be the stored one.
    k = s["intrinsics"].astype(np.float64)
    v, u = np.mgrid[0:h, 0:w]
    z = s["depth"].astype(np.float64)
    x = (u - k[0, 2]) / k[0, 0] * z
    y = (v - k[1, 2]) / k[1, 1] * z
    np.testing.assert_allclose(np.sqrt(x * x + y * y + z * z), distance, rtol=1e-5)
    assert k[0, 2] != pytest.approx((w - 1) / 2)  # the shift moved the principal point


def test_hypersim_tonemaps_hdr_when_the_preview_is_missing_and_honours_the_split(tmp_path):
    h, w = 24, 32
    _hypersim_frame(tmp_path, "ai_001_001", h, w, np.full((h, w), 3.0), jpg=False)
    _hypersim_frame(tmp_path, "ai_001_002", h, w, np.full((h, w), 3.0))
    split = tmp_path / "split.csv"
    split.write_text(
        "scene_name,camera_name,frame_id,included_in_public_release,exclude_reason,split_partition_name\n"
        "ai_001_001,cam_00,0,True,,train\nai_001_002,cam_00,0,True,,test\n"
    )
    ds = open_dataset("hypersim", tmp_path, split="train", split_file=str(split))
    assert len(ds) == 1
    s = ds[0]
    # Constant HDR 0.5: the 90th-percentile brightness maps to 0.8 after gamma 1/2.2.
    assert np.allclose(s["rgb"], 0.8, atol=1e-3)
    with pytest.raises(DataError, match="split"):
        open_dataset("hypersim", tmp_path, split="train")


# ---------------------------------------------------------------------------------------------- VKITTI 2
def _vkitti(root: Path, depth_cm: np.ndarray) -> None:
    var = root / "Scene01" / "clone"
    h, w = depth_cm.shape
    _write_rgb(var / "frames" / "rgb" / "Camera_0" / "rgb_00000.jpg", h, w)
    _write_png16(var / "frames" / "depth" / "Camera_0" / "depth_00000.png", depth_cm)
    (var / "intrinsic.txt").write_text(
        "frame cameraID K[0,0] K[1,1] K[0,2] K[1,2]\n0 0 725.0087 725.0087 620.5 187\n0 1 725.0087 725.0087 620.5 187\n"
    )


def test_vkitti_centimeters_and_sky(tmp_path):
    depth = np.full((20, 30), 1000, np.uint16)
    depth[3, 4] = 12345
    depth[0, :] = 65535
    _vkitti(tmp_path, depth)
    s = open_dataset("vkitti2", tmp_path, max_depth=1000.0)[0]
    check_sample(s)
    assert s["depth"][3, 4] == pytest.approx(123.45, abs=1e-4)
    assert s["depth"][5, 5] == pytest.approx(10.0)
    assert s["valid"][3, 4] and s["valid"][5, 5]
    assert not s["valid"][0].any()  # sky at 655.35 m is masked
    assert s["intrinsics"][0, 0] == pytest.approx(725.0087) and s["intrinsics"][1, 2] == pytest.approx(187)
    assert s["key"] == "Scene01/clone/frames/rgb/Camera_0/rgb_00000.jpg"
    default = open_dataset("vkitti2", tmp_path)[0]  # Marigold's 80 m cap
    assert not default["valid"][3, 4] and default["valid"][5, 5]


def test_vkitti_refuses_an_8bit_depth_png(tmp_path):
    var = tmp_path / "Scene01" / "clone" / "frames"
    _write_rgb(var / "rgb" / "Camera_0" / "rgb_00000.jpg", 8, 8)
    (var / "depth" / "Camera_0").mkdir(parents=True)
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(var / "depth" / "Camera_0" / "depth_00000.png")
    with pytest.raises(DataError, match="16-bit"):
        open_dataset("vkitti2", tmp_path)[0]


# ---------------------------------------------------------------------------------------------- folder / JSONL
def test_jsonl_index_scales_and_masks(tmp_path):
    _write_rgb(tmp_path / "img" / "a.png", 10, 12)
    _write_rgb(tmp_path / "img" / "b.jpg", 10, 12)
    mm = np.full((10, 12), 2500, np.uint16)
    mm[0, 0] = 0
    _write_png16(tmp_path / "depth" / "a.png", mm)
    meters = np.full((10, 12), 4.0, np.float32)
    meters[1, 1] = np.inf
    np.save(tmp_path / "depth" / "b.npy", meters)
    mask = np.full((10, 12), 255, np.uint8)
    mask[2, 2] = 0
    Image.fromarray(mask).save(tmp_path / "mask_b.png")
    lines = [
        {"rgb": "img/a.png", "depth": "depth/a.png", "depth_scale": 0.001, "caption": "a red chair on the left",
         "intrinsics": [100, 101, 5.5, 4.5]},
        {"rgb": "img/b.jpg", "depth": "depth/b.npy", "depth_scale": 1.0, "valid": "mask_b.png"},
    ]
    (tmp_path / "index.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n")
    ds = open_dataset("folder", tmp_path, captions={"img/b.jpg": "from captions.jsonl"})
    a, b = ds[0], ds[1]
    check_sample(a)
    check_sample(b)
    assert a["depth"][3, 3] == pytest.approx(2.5) and not a["valid"][0, 0] and a["valid"].sum() == 119
    assert a["caption"] == "a red chair on the left" and a["intrinsics"][1, 1] == pytest.approx(101)
    assert b["depth"][3, 3] == pytest.approx(4.0) and not b["valid"][1, 1] and not b["valid"][2, 2]
    assert b["caption"] == "from captions.jsonl" and np.isnan(b["intrinsics"]).all()
    batch = collate_samples([a, b])
    assert batch["rgb"].shape == (2, 3, 10, 12) and batch["caption"][0].startswith("a red")


def test_jsonl_without_scale_is_an_error(tmp_path):
    _write_rgb(tmp_path / "a.png", 4, 4)
    _write_png16(tmp_path / "d.png", np.ones((4, 4)))
    (tmp_path / "index.jsonl").write_text(json.dumps({"rgb": "a.png", "depth": "d.png"}) + "\n")
    with pytest.raises(DataError, match="depth_scale"):
        open_dataset("folder", tmp_path)
    assert len(open_dataset("folder", tmp_path, depth_scale=0.001)) == 1


def test_folder_layout(tmp_path):
    for name in ("x", "y"):
        _write_rgb(tmp_path / "rgb" / f"{name}.png", 6, 8)
        _write_png16(tmp_path / "depth" / f"{name}.png", np.full((6, 8), 300))
    ds = open_dataset("folder", tmp_path, depth_scale=0.01)
    assert len(ds) == 2 and ds[1]["depth"][0, 0] == pytest.approx(3.0) and ds[1]["key"] == "rgb/y.png"


# ---------------------------------------------------------------------------------------------- evaluation sets
def test_nyuv2_labeled_mat_and_eigen_crop(tmp_path):
    from scipy.io import savemat

    n, h, w = 3, 480, 640
    depths = np.full((n, h, w), 3.0, np.float32)
    depths[1, 100, 200] = 7.5
    depths[1, 101, 200] = 0.0
    images = np.zeros((n, h, w, 3), np.uint8)
    images[1, 100, 200] = (10, 20, 30)
    with h5py.File(tmp_path / "nyu_depth_v2_labeled.mat", "w") as f:  # MATLAB v7.3 stores the transpose
        f.create_dataset("images", data=images.transpose(0, 3, 2, 1))
        f.create_dataset("depths", data=depths.transpose(0, 2, 1))
    savemat(tmp_path / "splits.mat", {"testNdxs": np.array([[2], [3]]), "trainNdxs": np.array([[1]])})
    ds = open_dataset("nyuv2", tmp_path)
    assert len(ds) == 2 and (ds.min_depth, ds.max_depth) == (1e-3, 10.0)
    s = ds[0]  # image number 2 (1-based) = index 1
    check_sample(s)
    assert s["depth"][100, 200] == pytest.approx(7.5)
    np.testing.assert_allclose(s["rgb"][:, 100, 200] * 255, [10, 20, 30], atol=1e-4)
    assert not s["valid"][101, 200]
    assert s["valid"][45, 41] and not s["valid"][44, 41] and not s["valid"][45, 40]
    assert not s["valid"][471, 300] and not s["valid"][300, 601] and s["valid"][470, 600]
    assert s["valid"].sum() == (471 - 45) * (601 - 41) - 1


def test_kitti_eigen_split_benchmark_and_garg_crop(tmp_path):
    h, w = 375, 1242
    rel = "2011_09_26/2011_09_26_drive_0002_sync/image_02/data/0000000069.png"
    gt_rel = "2011_09_26_drive_0002_sync/proj_depth/groundtruth/image_02/0000000069.png"
    _write_rgb(tmp_path / "raw" / rel, h, w)
    gt = np.zeros((h, w), np.uint16)
    gt[300, 600] = 3200  # 12.5 m
    gt[350, 20] = 3200  # outside the Garg crop
    gt[360, 700] = 256 * 85  # beyond 80 m
    _write_png16(tmp_path / "ann" / "val" / gt_rel, gt)
    split = tmp_path / "eigen_test.txt"
    split.write_text(f"{rel} {gt_rel} 721.5377\n{rel} None 721.5377\n")
    ds = open_dataset("kitti", tmp_path / "raw", split_file=str(split), gt_root=str(tmp_path / "ann"))
    assert len(ds) == 1 and ds.max_depth == 80.0
    s = ds[0]
    check_sample(s)
    top, left = h - 352, (w - 1216) // 2
    assert s["depth"].shape == (352, 1216)
    assert s["depth"][300 - top, 600 - left] == pytest.approx(12.5) and s["valid"][300 - top, 600 - left]
    assert s["valid"].sum() == 1  # 0 = no return; the left pixel is outside the Garg crop; 85 m > cap
    assert s["intrinsics"][0, 0] == pytest.approx(721.5377)
    assert s["intrinsics"][0, 2] == pytest.approx((w - 1) / 2 - left)


def test_eth3d_raw_float_depth(tmp_path):
    scene = tmp_path / "courtyard"
    _write_rgb(scene / "images" / "dslr_images_undistorted" / "DSC_0001.JPG", 12, 18)
    depth = np.full((12, 18), 5.25, np.float32)
    depth[2, 3] = np.inf
    (scene / "ground_truth_depth" / "dslr_images").mkdir(parents=True)
    depth.astype("<f4").tofile(scene / "ground_truth_depth" / "dslr_images" / "DSC_0001.JPG")
    calib = scene / "dslr_calibration_undistorted"
    calib.mkdir()
    (calib / "cameras.txt").write_text("# c\n0 PINHOLE 36 24 30.0 31.0 17.5 11.5\n")
    s = open_dataset("eth3d", tmp_path)[0]
    check_sample(s)
    assert s["depth"][0, 0] == pytest.approx(5.25) and not s["valid"][2, 3] and s["valid"].sum() == 12 * 18 - 1
    np.testing.assert_allclose(s["intrinsics"][0], [15.0, 0, 8.5])  # calibration at 2x resolution, scaled
    (scene / "ground_truth_depth" / "dslr_images" / "DSC_0001.JPG").write_bytes(b"\0" * 40)
    with pytest.raises(DataError, match="float32"):
        open_dataset("eth3d", tmp_path)[0]


def test_scannet_millimeters_and_resized_color(tmp_path):
    scene = tmp_path / "scene0707_00"
    _write_rgb(scene / "color" / "0.jpg", 72, 96, value=200)
    d = np.full((48, 64), 1500, np.uint16)
    d[0, 0] = 0
    d[1, 1] = 12000  # 12 m, beyond ScanNet's 10 m range
    _write_png16(scene / "depth" / "0.png", d)
    (scene / "intrinsic").mkdir()
    np.savetxt(scene / "intrinsic" / "intrinsic_depth.txt", np.diag([577.0, 578.0, 1.0, 1.0]))
    s = open_dataset("scannet", tmp_path)[0]
    check_sample(s)
    assert s["rgb"].shape == (3, 48, 64) and abs(float(s["rgb"].mean()) - 200 / 255) < 0.02
    assert s["depth"][5, 5] == pytest.approx(1.5) and not s["valid"][0, 0] and not s["valid"][1, 1]
    assert s["intrinsics"][1, 1] == pytest.approx(578.0)


def test_diode_npy_depth_and_mask(tmp_path):
    scan = tmp_path / "val" / "outdoor" / "scene_00022" / "scan_00193"
    name = "00022_00193_outdoor_000_000"
    _write_rgb(scan / f"{name}.png", 12, 16)
    depth = np.full((12, 16, 1), 20.0, np.float32)
    depth[0, 0, 0] = 0.5  # below DIODE's 0.6 m
    mask = np.ones((12, 16), np.float32)
    mask[3, 3] = 0
    np.save(scan / f"{name}_depth.npy", depth)
    np.save(scan / f"{name}_depth_mask.npy", mask)
    ds = open_dataset("diode", tmp_path)
    s = ds[0]
    check_sample(s)
    assert (ds.min_depth, ds.max_depth) == (0.6, 350.0)
    assert s["depth"][5, 5] == pytest.approx(20.0) and not s["valid"][0, 0] and not s["valid"][3, 3]
    assert s["valid"].sum() == 12 * 16 - 2


def test_registry_errors(tmp_path):
    with pytest.raises(ConfigError, match="unknown dataset"):
        open_dataset("nope", tmp_path)
    with pytest.raises(ConfigError, match="no options"):
        open_dataset("vkitti2", tmp_path, bogus=1)
    with pytest.raises(DataError):
        open_dataset("vkitti2", tmp_path)


# ---------------------------------------------------------------------------------------------- augmentation
def _ray_sample(h: int = 40, w: int = 60) -> dict:
    """Color = the ray slopes (x/z, y/z) of each pixel under K, so geometry can be checked after a transform."""
    k = np.array([[50.0, 0, 27.0], [0, 55.0, 21.0], [0, 0, 1]], np.float32)
    v, u = np.mgrid[0:h, 0:w].astype(np.float32)
    sx, sy = (u - k[0, 2]) / k[0, 0], (v - k[1, 2]) / k[1, 1]
    rgb = np.stack([(sx + 1) / 2, (sy + 1) / 2, np.zeros_like(sx)]).astype(np.float32)
    depth = (2.0 + u + 100 * v).astype(np.float32)  # unique per pixel
    valid = (u + v) % 3 != 0
    return {"rgb": rgb, "depth": depth, "valid": valid, "caption": "", "intrinsics": k, "key": "x"}


def _check_rays(s: dict, tol: float, mirrored: bool = False) -> None:
    """A mirrored image shows the mirrored scene: its x slopes change sign."""
    h, w = s["depth"].shape
    k = s["intrinsics"]
    v, u = np.mgrid[0:h, 0:w].astype(np.float32)
    sx, sy = (u - k[0, 2]) / k[0, 0], (v - k[1, 2]) / k[1, 1]
    inner = (slice(2, -2), slice(2, -2))  # bilinear resampling is exact for linear color away from borders
    np.testing.assert_allclose(np.asarray(s["rgb"])[0][inner] * 2 - 1, -sx[inner] if mirrored else sx[inner], atol=tol)
    np.testing.assert_allclose(np.asarray(s["rgb"])[1][inner] * 2 - 1, sy[inner], atol=tol)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("flip", [False, True])
def test_augment_keeps_color_depth_mask_and_intrinsics_consistent(seed, flip):
    src = _ray_sample()
    cfg = AugmentConfig(resolution=(16, 24), crop_scale=(0.5, 1.0), hflip=float(flip))
    s = augment(src, cfg, np.random.default_rng(seed))
    check_sample(s)
    assert s["depth"].shape == (16, 24)
    _check_rays(s, tol=0.03, mirrored=flip)
    # Nearest sampling: every depth is a source pixel's, and its mask bit came along with it.
    lut = {float(d): bool(m) for d, m in zip(src["depth"].ravel(), src["valid"].ravel(), strict=True)}
    assert all(lut[float(d)] == bool(m) for d, m in zip(s["depth"].ravel(), s["valid"].ravel(), strict=True))


@pytest.mark.parametrize("seed", range(2))
def test_the_ambiguous_mask_moves_with_the_depth_and_reaches_the_batch(seed):
    src = _ray_sample()
    src["ambiguous"] = (src["depth"] % 7) < 2  # any pattern tied to the pixel
    cfg = AugmentConfig(resolution=(16, 24), crop_scale=(0.5, 1.0), hflip=0.5)
    samples = [augment(src, cfg, np.random.default_rng([seed, i])) for i in range(3)]
    for s in samples:
        assert s["ambiguous"].dtype == np.bool_ and s["ambiguous"].shape == (16, 24)
        np.testing.assert_array_equal(s["ambiguous"], (s["depth"] % 7) < 2)
    batch = collate_samples(samples)
    assert batch["ambiguous"].dtype == torch.bool and batch["ambiguous"].shape == (3, 16, 24)
    assert "ambiguous" not in collate_samples([_ray_sample(), _ray_sample()])  # optional: only when all have it


def test_flip_crop_resize_each():
    src = _ray_sample()
    flipped = hflip_sample(src)
    _check_rays(flipped, 1e-6, mirrored=True)
    assert flipped["depth"][0, 0] == src["depth"][0, -1]
    assert flipped["intrinsics"][0, 2] == pytest.approx(59 - 27.0)
    cropped = crop_sample(src, 5, 7, 20, 30)
    _check_rays(cropped, 1e-6)
    assert cropped["depth"][0, 0] == src["depth"][5, 7]
    _check_rays(resize_sample(src, 80, 120), 0.01)


def test_mix_sampler_is_deterministic_and_shards():
    sizes, probs = [10, 6], [0.75, 0.25]
    single = MixBatchSampler(sizes, probs, batch_size=2, seed=3)
    single.set_epoch(1)
    batches = list(single)
    assert len(batches) == len(single) == 8
    assert all(len({d for d, _, _ in b}) == 1 for b in batches)  # one dataset per batch
    assert batches == list(single)
    ranks = [MixBatchSampler(sizes, probs, batch_size=2, seed=3, num_replicas=2, rank=r) for r in (0, 1)]
    for r in ranks:
        r.set_epoch(1)
    sharded = [list(r) for r in ranks]
    interleaved = [b for pair in zip(*sharded, strict=True) for b in pair]
    assert interleaved == batches
    resumed = MixBatchSampler(sizes, probs, batch_size=2, seed=3)
    resumed.set_epoch(1, start_batch=5)
    assert list(resumed) == batches[5:]


def test_training_mix_augments_reproducibly():
    data = [_ray_sample(), _ray_sample(30, 30)]
    mix = TrainingMix([data], [AugmentConfig(resolution=(16, 16), crop_scale=(0.5, 1.0))], seed=1)
    a, b, c = mix[(0, 1, 0)], mix[(0, 1, 0)], mix[(0, 1, 1)]
    assert np.array_equal(a["depth"], b["depth"])
    assert a["depth"].shape == (16, 16) and not np.array_equal(a["depth"], c["depth"])
