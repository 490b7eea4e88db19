"""Commands that only list or print start without importing torch (or the libraries behind the built-ins).

Timing lives in benchmarks/bench_startup.py; here we assert what is imported, which is what the
time depends on, in a fresh interpreter per command.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("torch", "torchvision", "timm", "open_clip", "transformers", "numpy", "scipy", "sklearn", "matplotlib",
         "huggingface_hub", "safetensors", "pyautoattack")

PROBE = """
import json, sys
from rftbench.cli import main
try:
    main(sys.argv[1:])
except SystemExit:
    pass
print(json.dumps(sorted(m for m in {heavy!r} if m in sys.modules)), file=sys.__stderr__)
"""


@pytest.mark.parametrize("argv", [["--help"], ["plugins"], ["plugins", "--json"], ["zoo", "list"], ["config", "show"],
                                  ["config", "show", "--set", "loss.beta=6"], ["results", "{tmp}"]])
def test_listing_commands_import_no_torch(argv, tmp_path, monkeypatch):
    monkeypatch.delenv("RFTBENCH_LOAD_PLUGINS", raising=False)
    monkeypatch.delenv("RFTBENCH_DISABLE_PLUGINS", raising=False)
    argv = [a.replace("{tmp}", str(tmp_path)) for a in argv]
    done = subprocess.run([sys.executable, "-c", PROBE.format(heavy=HEAVY), *argv], capture_output=True, text=True, timeout=120)
    imported = json.loads(done.stderr.strip().splitlines()[-1])
    assert imported == [], f"`rftbench {' '.join(argv)}` imported {imported}"


def test_every_builtin_plugin_module_imports_without_torch():
    code = ("import importlib.metadata, json, sys\n"
            "for ep in importlib.metadata.entry_points(group='rftbench'):\n"
            "    if ep.dist and ep.dist.name == 'rftbench':\n"
            "        ep.load()\n"
            f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True)
    assert json.loads(done.stdout) == []
