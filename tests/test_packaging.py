"""The install is quiet and complete: every folder of data files is a declared package with its files matched."""

from __future__ import annotations

import fnmatch
import subprocess
from pathlib import Path

import pytest

try:
    import tomllib
except ImportError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[1]


def _setuptools() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]


def test_every_folder_under_a_package_is_declared_and_its_data_files_are_matched():
    """setuptools warns "Package would be ignored" (~300 lines per install) for a folder missing from `packages`."""
    conf = _setuptools()
    packages, data = set(conf["packages"]), conf.get("package-data", {})
    missing, unmatched = [], []
    for package, folder in conf["package-dir"].items():
        root = ROOT / folder
        for path in sorted(root.rglob("*")):
            if "__pycache__" in path.parts or path.name.startswith("."):
                continue
            rel = path.relative_to(root)
            if path.is_dir():
                name = ".".join((package, *rel.parts))
                if name not in packages:
                    missing.append(name)
            elif path.suffix not in (".py", ".pyc"):
                owner = ".".join((package, *rel.parts[:-1]))
                if not any(fnmatch.fnmatch(path.name, g) for g in data.get(owner, [])):
                    unmatched.append(str(path.relative_to(ROOT)))
    assert not missing, f"add to [tool.setuptools] packages (and package-data): {missing}"
    assert not unmatched, f"files no package-data glob installs: {unmatched}"


def test_make_installs_torch_from_torch_index_first(tmp_path):
    dry = ["make", "-n", "demo", f"VENV={tmp_path / 'venv'}"]
    plain = subprocess.run(dry, cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert "--index-url" not in plain
    cpu = subprocess.run([*dry, "TORCH_INDEX=https://download.pytorch.org/whl/cpu"], cwd=ROOT, capture_output=True, text=True,
                         check=True).stdout.splitlines()
    index = next(i for i, line in enumerate(cpu) if "--index-url https://download.pytorch.org/whl/cpu" in line)
    assert "torch torchvision" in cpu[index] and index < next(i for i, line in enumerate(cpu) if '-e ".[dev]"' in line)


def test_shipped_study_records_name_no_folder_of_the_machine_they_ran_on():
    import json
    import re

    absolute = re.compile(r"^(/|[A-Za-z]:[\\/]|~)")
    found = []

    def walk(value, where):
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, f"{where}.{k}")
        elif isinstance(value, list):
            for i, v in enumerate(value):
                walk(v, f"{where}[{i}]")
        elif isinstance(value, str) and absolute.match(value):
            found.append(f"{where} = {value}")

    records = sorted((ROOT / "examples" / "studies").glob("*/records*/*.json"))
    assert len(records) > 50
    for path in records:
        walk(json.loads(path.read_text()), str(path.relative_to(ROOT)))
    assert not found, found[:5]
