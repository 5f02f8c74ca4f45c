"""Mutation testing of the core modules with mutmut: which deliberate bugs do the fast tests miss?

    pip install -r requirements/mutation.txt
    python scripts/mutation.py                       # every module below (hours on a laptop)
    python scripts/mutation.py geometry text         # some modules
    python scripts/mutation.py pipeline --sample     # one mutant in ten (those numbered ...0)

Slow, so not in CI. Each module is mutated in its own scratch copy (``build/mutation/<module>``) and tested
only with its own fast unit tests (``MODULES``): mutmut runs, per mutant, every selected test that reaches the
mutated function, so with one shared selection a mutant in ``text.py`` would re-run the whole pipeline suite.
The shared settings are the ``[mutmut]`` section of ``setup.cfg`` (which also works alone: ``mutmut run`` over
all modules and tests); this script narrows ``only_mutate`` and the test selection per module.

Prints, per module, how many mutants were killed, survived and reached by no test; the survivors are listed
(``mutmut show NAME`` inside the scratch copy prints one). A survivor is a change to the code that no test
notices: either a test is missing, or the mutant does not change behaviour (an equivalent mutant).
"""

from __future__ import annotations

import argparse
import collections
import configparser
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: module key -> (file to mutate, fast test files that exercise it: no DDS, no training, no export)
MODULES: dict[str, tuple[str, list[str]]] = {
    "pipeline": (
        "iris_model/pipeline.py",
        ["tests/test_pipeline_parity.py", "tests/test_pipeline_options.py", "tests/test_model_loading.py"],
    ),
    "geometry": ("iris_model/geometry.py", ["tests/test_geometry.py", "tests/test_geometry_contract.py"]),
    "metrics": ("iris_model/metrics.py", ["tests/test_metrics.py", "tests/test_metrics_protocol.py"]),
    "text": ("iris_model/text.py", ["tests/test_text_cache.py"]),
    "image_codec": ("iris_ros/image_codec.py", ["tests/test_image_codec.py"]),
    "camera_info": ("iris_ros/camera_info.py", ["tests/test_cloud_packing.py", "tests/test_camera_info_contract.py"]),
    "cloud_packing": (
        "iris_ros/cloud_packing.py", ["tests/test_cloud_packing.py", "tests/test_cloud_packing_contract.py"]
    ),
}
COPIED = ("iris_model", "iris_ros", "tests")


def _prepare(module: str, work: Path) -> Path:
    """A fresh scratch copy of the sources and tests with ``setup.cfg`` narrowed to one module."""
    target, tests = MODULES[module]
    copy = work / module
    if copy.exists():
        shutil.rmtree(copy)
    copy.mkdir(parents=True)
    for name in COPIED:
        shutil.copytree(ROOT / name, copy / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    section = cfg["mutmut"]
    section["only_mutate"] = "\n" + target
    section["pytest_add_cli_args_test_selection"] = "\n" + "\n".join(t for t in tests if (ROOT / t).is_file())
    section["use_git_change_detection"] = "false"  # the copy is not a git checkout
    narrowed = configparser.ConfigParser()
    narrowed["mutmut"] = section
    with open(copy / "setup.cfg", "w") as handle:
        narrowed.write(handle)
    return copy


def _mutmut(copy: Path, *args: str, capture: bool = False) -> str:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false",
           "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    # mutmut puts the scratch copy's mutants/ first on sys.path; a PYTHONPATH pointing at this checkout
    # would make the tests import the unmutated code instead.
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and Path(p).resolve() != ROOT
    )
    result = subprocess.run([sys.executable, "-m", "mutmut", *args], cwd=copy, env=env, check=False,
                            stdout=subprocess.PIPE if capture else None, text=True)
    return result.stdout or ""


def run_module(module: str, work: Path, sample: bool, max_children: int) -> collections.Counter:
    copy = _prepare(module, work)
    dotted = MODULES[module][0].removesuffix(".py").replace("/", ".")
    pattern = f"{dotted}.*__mutmut_*0" if sample else f"{dotted}.*"
    _mutmut(copy, "run", "--max-children", str(max_children), pattern)
    counts: collections.Counter = collections.Counter()
    survivors = []
    for line in _mutmut(copy, "results", "--all", "true", capture=True).splitlines():
        name, _, status = line.strip().rpartition(": ")
        if not name.startswith(dotted + ".") or status == "not checked":
            continue
        counts[status] += 1
        if status not in ("killed", "caught by type check"):
            survivors.append(f"  {status:9s} {name}")
    print(f"\n{module} ({MODULES[module][0]}{', one in ten' if sample else ''}): "
          + ", ".join(f"{n} {s}" for s, n in sorted(counts.items())))
    print("\n".join(survivors))
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", help=f"some of {', '.join(MODULES)} (default: all)")
    parser.add_argument("--sample", action="store_true", help="only mutants numbered ...0 (one in ten)")
    parser.add_argument("--max-children", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--work", type=Path, default=ROOT / "build" / "mutation", help="scratch folder")
    args = parser.parse_args(argv)
    unknown = [m for m in args.modules if m not in MODULES]
    if unknown:
        parser.error(f"unknown module(s) {', '.join(unknown)}; choose from {', '.join(MODULES)}")
    totals = {m: run_module(m, args.work, args.sample, args.max_children) for m in args.modules or MODULES}
    print("\nmodule          killed  survived  no tests  other")
    for module, c in totals.items():
        other = sum(c.values()) - c["killed"] - c["survived"] - c["no tests"]
        print(f"{module:15s} {c['killed']:6d}  {c['survived']:8d}  {c['no tests']:8d}  {other:5d}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
