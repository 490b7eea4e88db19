"""`rftbench plugin new`: the generated distribution installs with `pip install -e` and passes its own tests."""

from __future__ import annotations

import json
import re
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rftbench._scaffold import KINDS
from tests.cli_helpers import run_cli

BOOT = "import site, sys; site.addsitedir(sys.argv[1]); sys.argv = sys.argv[1:]\n"


def install_editable(project: Path, site: Path) -> None:
    """`pip install -e` into a private folder (no network); `site.addsitedir` then reads its .pth as site-packages would."""
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation", "--no-index",
                    "--target", str(site), "-e", str(project)], check=True, capture_output=True)


def run_in_site(site: Path, code: str, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RFTBENCH_")}
    env.update(OMP_NUM_THREADS="1", RFTBENCH_CACHE=str(cwd / "cache"))
    return subprocess.run([sys.executable, "-c", BOOT + code, str(site), *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=600)


PYTEST = "import pytest; sys.exit(pytest.main(['-q', '-p', 'no:cacheprovider', '-p', 'no:randomly', sys.argv[1]]))"


def generate(capsys, tmp_path: Path, *kinds: str) -> Path:
    args = [a for k in kinds for a in ("--kind", k)]
    code, out, err = run_cli(capsys, "plugin", "new", "acme-rft", *args, "--dir", str(tmp_path))
    assert code == 0, err
    assert "pip install -e" in out
    return tmp_path / "acme-rft"


def test_generated_plugin_passes_its_tests_and_they_catch_a_broken_contract(capsys, tmp_path):
    project = generate(capsys, tmp_path, "loss", "threat_model")
    assert sorted(p.name for p in project.iterdir()) == ["README.md", "acme_rft", "pyproject.toml", "tests"]
    assert 'acme_rft = "acme_rft.plugin"' in (project / "pyproject.toml").read_text()
    site = tmp_path / "site"
    install_editable(project, site)

    listed = run_in_site(site, "from rftbench.cli import main; main(['plugins', '--json'])", cwd=tmp_path)
    plugins = {p["name"]: p for p in json.loads(listed.stdout)["plugins"]}
    assert plugins["acme_rft"]["status"] == "ok" and plugins["acme_rft"]["distribution"] == "acme-rft"
    assert plugins["acme_rft"]["contributions"] == {"loss": ["acme-rft-weighted-at"], "threat_model": ["acme-rft-noise"]}

    passed = run_in_site(site, PYTEST, str(project), cwd=tmp_path)
    assert passed.returncode == 0, passed.stdout[-3000:] + passed.stderr[-2000:]
    assert re.search(r"(?<!\d)3 passed", passed.stdout), passed.stdout[-2000:]  # not "13 passed"

    # An editable install sees edits: break the loss (no gradient reaches the adversarial logits).
    module = project / "acme_rft" / "plugin.py"
    module.write_text(module.read_text().replace("F.cross_entropy(adv.float(), y)", "F.cross_entropy(adv.float(), y).detach()"))
    failed = run_in_site(site, PYTEST, str(project), cwd=tmp_path)
    assert failed.returncode != 0
    assert "does not depend on the logits it says it uses" in failed.stdout


@pytest.mark.slow
def test_every_kind_generates_a_passing_plugin(capsys, tmp_path):
    project = generate(capsys, tmp_path, *KINDS)
    site = tmp_path / "site"
    install_editable(project, site)
    passed = run_in_site(site, PYTEST, str(project), cwd=tmp_path)
    assert passed.returncode == 0, passed.stdout[-3000:] + passed.stderr[-2000:]
    assert re.search(rf"(?<!\d){len(KINDS) + 1} passed", passed.stdout), passed.stdout[-2000:]


def test_bad_input_is_an_error_naming_the_fix(capsys, tmp_path):
    generate(capsys, tmp_path, "loss")
    code, out, err = run_cli(capsys, "plugin", "new", "acme-rft", "--dir", str(tmp_path))
    assert code == 2 and "already exists" in err
    code, out, err = run_cli(capsys, "plugin", "new", "other", "--kind", "losss", "--dir", str(tmp_path))
    assert code == 2 and "Did you mean: loss?" in err
    code, out, err = run_cli(capsys, "plugin", "new", "../evil", "--dir", str(tmp_path))
    assert code == 2 and "plugin name '../evil'" in err
    code, out, err = run_cli(capsys, "plugin", "new", "rftbench", "--dir", str(tmp_path))
    assert code == 2 and "taken" in err
