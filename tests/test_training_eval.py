"""iris-eval: the protocol (alignment, crop, depth range), the table per steps and text, the CLI outputs."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

pytest.importorskip("iris_training", reason="the training package is not installed (pip install -e training)")

from iris_training.data.registry import open_dataset
from iris_training.errors import DataError
from iris_training.evaluate import evaluate_pipeline, main, markdown_table

from iris_model import IrisDepthOutput
from iris_model.metrics import compute_metrics

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _nyu(root: Path, n: int = 2) -> Path:
    rng = np.random.default_rng(0)
    depths = rng.uniform(0.5, 9.0, (n, 480, 640)).astype(np.float32)
    images = rng.integers(0, 256, (n, 480, 640, 3), dtype=np.uint8)
    root.mkdir(parents=True, exist_ok=True)
    with h5py.File(root / "nyu_depth_v2_labeled.mat", "w") as f:
        f.create_dataset("images", data=images.transpose(0, 3, 2, 1))
        f.create_dataset("depths", data=depths.transpose(0, 2, 1))
    (root / "test_ids.txt").write_text(" ".join(str(i + 1) for i in range(n)))
    return root


class AffineOracle:
    """A 'model' answering 0.1 * gt + 0.2 inside the Eigen crop and garbage outside it."""

    def __init__(self, dataset):
        self.dataset, self.calls = dataset, []

    def __call__(self, image, text=None, **kwargs):
        self.calls.append((text, kwargs["num_inference_steps"]))
        i = next(k for k in range(len(self.dataset)) if torch.equal(
            torch.as_tensor(self.dataset[k]["rgb"]), image))
        s = self.dataset[i]
        pred = np.where(s["valid"], 0.1 * s["depth"] + 0.2, 123.0)
        return IrisDepthOutput(depth=pred[None].astype(np.float32))


def test_protocol_aligns_and_scores_only_the_crop(tmp_path):
    ds = open_dataset("nyuv2", _nyu(tmp_path / "nyu"), split="test", split_file=str(tmp_path / "nyu" / "test_ids.txt"),
                      captions={"nyu_depth_v2_labeled.mat#0000": "a desk", "nyu_depth_v2_labeled.mat#0001": "a bed"})
    oracle = AffineOracle(ds)
    rows = evaluate_pipeline(oracle, ds, steps=[1, 4], text_modes=["on", "off"])  # type: ignore[arg-type]
    assert [(r["steps"], r["text"]) for r in rows] == [(1, "on"), (1, "off"), (4, "on"), (4, "off")]
    for r in rows:
        assert r["n"] == 2 and r["abs_rel"] < 1e-6 and r["delta1"] == 1.0
    assert ("a desk", 1) in oracle.calls and (None, 4) in oracle.calls
    md = markdown_table(rows, "nyu")
    assert md.count("\n| ") == 5 and "AbsRel" in md and "δ1" in md


def test_real_pipeline_rows_match_compute_metrics(tmp_path, tiny_model_dir):
    from iris_model import IrisDepthPipeline

    root = _nyu(tmp_path / "nyu", n=1)
    ds = open_dataset("nyuv2", root, split="all")
    pipe = IrisDepthPipeline.from_pretrained(tiny_model_dir)
    rows = evaluate_pipeline(pipe, ds, steps=[2], text_modes=["off"], seed=5)
    s = ds[0]
    pred = pipe(torch.as_tensor(s["rgb"]), None, num_inference_steps=2, generator=torch.Generator().manual_seed(5))
    expected = compute_metrics(pred.depth[0], s["depth"], s["valid"], min_depth=1e-3, max_depth=10.0)
    assert rows[0]["abs_rel"] == pytest.approx(expected["abs_rel"]) and rows[0]["n"] == 1
    with pytest.raises(DataError, match="no caption"):
        evaluate_pipeline(pipe, ds, steps=[1], text_modes=["on"])


def test_cli_writes_markdown_and_json(tmp_path, tiny_model_dir, capsys):
    root = _nyu(tmp_path / "nyu")
    captions = tmp_path / "captions.jsonl"
    captions.write_text("".join(json.dumps({"key": f"nyu_depth_v2_labeled.mat#{i:04d}", "caption": "a room"}) + "\n"
                                for i in range(2)))
    out = tmp_path / "results" / "nyu"
    code = main([str(tiny_model_dir), "--dataset", "nyuv2", "--root", str(root), "--captions", str(captions),
                 "--option", f"split_file={root / 'test_ids.txt'}", "--steps", "1,2", "--text", "both",
                 "--out", str(out), "--device", "cpu"])
    assert code == 0
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["max_depth"] == 10.0 and len(record["results"]) == 4
    assert {(r["steps"], r["text"]) for r in record["results"]} == {(1, "on"), (1, "off"), (2, "on"), (2, "off")}
    assert all(0 <= r["delta1"] <= 1 and r["abs_rel"] > 0 for r in record["results"])
    assert "| 2 | on |" in out.with_suffix(".md").read_text()
    assert "AbsRel" in capsys.readouterr().out
    # Text on without captions: a clear error, exit status 2.
    assert main([str(tiny_model_dir), "--dataset", "nyuv2", "--root", str(root), "--text", "on"]) == 2
    assert "--captions" in capsys.readouterr().err


def test_synthetic_dataset_with_and_without_text_in_one_command(tmp_path, tiny_model_dir, capsys):
    from iris_training.claims import score
    from iris_training.synthetic.registered import open_synthetic

    from iris_model import IrisDepthPipeline

    out = tmp_path / "results" / "synthetic"
    code = main([str(tiny_model_dir), "--dataset", "synthetic", "--split", "val", "--count", "4", "--max-samples", "2",
                 "--scene-seed", "3", "--scene-size", "64x48", "--steps", "1", "--text", "both", "--seed", "2",
                 "--out", str(out), "--device", "cpu"])
    assert code == 0, capsys.readouterr().err
    record = json.loads(out.with_suffix(".json").read_text())
    assert record["synthetic"] == {"split": "val", "count": 4, "seed": 3, "width": 64, "height": 48}
    rows = {(r["steps"], r["text"]): r for r in record["results"]}
    assert set(rows) == {(1, "on"), (1, "off")} and all(r["n"] == 2 for r in rows.values())
    # the same figures computed here, scene by scene, with the scenes' own captions and the claims protocol
    ds = open_synthetic("", split="val", size=4, height=48, width=64, seed=3)
    pipe = IrisDepthPipeline.from_pretrained(tiny_model_dir)
    families = {(r["text"], r["family"]): r for r in record["families"]}
    for mode in ("on", "off"):
        whole, amb, by_family = [], [], {}
        for i in range(2):
            s = ds[i]
            text = s["caption"] if mode == "on" else None
            assert s["caption"]
            depth = pipe(s["rgb"], text, num_inference_steps=1, generator=torch.Generator().manual_seed(2 + i)).depth[0]
            w, a = score(depth, s["depth"].numpy(), s["valid"].numpy(), s["ambiguous"].numpy(), 1e-3, 80.0)
            whole.append(w["abs_rel"])
            by_family.setdefault(s["family"], []).append(w["abs_rel"])
            if a is not None:
                amb.append(a["delta1"])
        assert rows[(1, mode)]["abs_rel"] == pytest.approx(np.mean(whole), rel=1e-6)
        for family, values in by_family.items():
            assert families[(mode, family)]["n"] == len(values)
            assert families[(mode, family)]["abs_rel"] == pytest.approx(np.mean(values), rel=1e-6)
        assert sum(r["n"] for (m, _), r in families.items() if m == mode) == 2
        if amb:
            ambiguous = {(r["steps"], r["text"]): r for r in record["ambiguous"]}
            assert ambiguous[(1, mode)]["delta1"] == pytest.approx(np.mean(amb), rel=1e-6)
    (effect,) = record["text_effect"]
    assert effect["abs_rel_reduction"] == pytest.approx(1 - rows[(1, "on")]["abs_rel"] / rows[(1, "off")]["abs_rel"])
    md = out.with_suffix(".md").read_text()
    assert "| 1 | on |" in md and "| 1 | off |" in md and "with text vs without" in md
    assert "per scene family" in md and f"| 1 | on | {ds[0]['family']} |" in md


def test_other_datasets_still_need_a_root(tiny_model_dir, capsys):
    assert main([str(tiny_model_dir), "--dataset", "nyuv2", "--text", "off"]) == 2
    assert "--root is required" in capsys.readouterr().err


def test_claims_report_without_a_caption_free_twin(tmp_path, tiny_model_dir):
    """A single-step model has no twin and one step: (a) and (b) only, no steps plot; the text model's
    figures are those of iris-eval on the same scenes."""
    from iris_training.claims import main as claims_main

    out = tmp_path / "claims"
    assert claims_main(["--text-model", str(tiny_model_dir), "--count", "2", "--steps", "1", "--height", "48",
                        "--width", "64", "--threads", "1", "--out", str(out)]) == 0
    table = json.loads((out / "claims.json").read_text())["table"]
    assert set(table) == {"a", "b"} and set(table["a"]) == {"1"}
    md = (out / "claims.md").read_text()
    assert "(a) text model, with caption | 1 |" in md and "(c)" not in md
    assert not (out / "claims_steps.png").exists() and "## Plots" not in md
    # Regenerating keeps a hand-written reading of the tables, and the tables stay generated.
    (out / "claims.md").write_text(md.replace("## Whole image", "## Reading\n\nText gains, by hand.\n\n## Whole image"))
    assert claims_main(["--text-model", str(tiny_model_dir), "--count", "2", "--steps", "1", "--height", "48",
                        "--width", "64", "--threads", "1", "--out", str(out)]) == 0
    again = (out / "claims.md").read_text()
    assert again == md.replace("## Whole image", "## Reading\n\nText gains, by hand.\n\n## Whole image")
    record = tmp_path / "eval"
    assert main([str(tiny_model_dir), "--dataset", "synthetic", "--count", "2", "--scene-size", "64x48", "--steps",
                 "1", "--text", "both", "--out", str(record), "--device", "cpu"]) == 0
    rows = {r["text"]: r for r in json.loads(record.with_suffix(".json").read_text())["results"]}
    assert table["a"]["1"]["all"]["abs_rel"] == pytest.approx(rows["on"]["abs_rel"], rel=1e-6)


def test_probe_report_groups_probe_scenes_and_its_exact_target_is_a_perfect_ceiling():
    from iris_training.probe_report import ROWS, markdown, report
    from iris_training.synthetic.dataset import generate_sample

    from iris_model.default_model import default_model_dir

    count = 6
    probe_scenes = sum(bool(generate_sample("val", i, height=96, width=128).ambiguous.any()) for i in range(count))
    result = report(str(default_model_dir()), "val", count, quantile=0.0, height=96, width=128)
    assert set(result) <= {"pair", "backdrop", "pair+backdrop"} and result
    assert sum(rows["target"]["scenes"] for rows in result.values()) <= probe_scenes
    for rows in result.values():
        assert set(rows) == set(ROWS)
        assert rows["target"]["delta1"] == 1.0 and rows["target"]["abs_rel"] < 1e-4  # the truth, affinely mapped
        assert 0.0 <= rows["VAE round trip"]["delta1"] <= 1.0
    table = markdown(result)
    assert all(f"| {key} |" in table for key in result)


def test_probe_report_round_trip_goes_through_the_models_depth_encoding():
    """The ceiling's VAE sees the target as the decoder is trained to output it (log-spaced at k = 10) and its
    output is mapped back: with a VAE that returns its input, the round trip is the target itself."""
    from types import SimpleNamespace

    from iris_training.probe_report import _ceilings

    from iris_model.depth_encoding import encode_depth

    seen = []

    def encode(image):
        seen.append(image.clone())
        return SimpleNamespace(latent_dist=SimpleNamespace(mode=lambda: image))

    vae = SimpleNamespace(encode=encode, decode=lambda z: SimpleNamespace(sample=z))
    depth = np.linspace(1.0, 9.0, 48 * 64, dtype=np.float32).reshape(48, 64)
    target, round_trip = _ceilings(vae, depth, np.ones_like(depth, bool), 0.0, log_scale=10.0)
    expected_input = encode_depth(torch.from_numpy((target + 1.0) / 2.0), 10.0) * 2.0 - 1.0
    np.testing.assert_allclose(seen[0][0, 0].numpy(), expected_input.numpy(), atol=1e-6)
    assert not np.allclose(seen[0][0, 0].numpy(), target, atol=1e-2)  # the encoding is not the identity here
    np.testing.assert_allclose(round_trip, target, atol=1e-5)
