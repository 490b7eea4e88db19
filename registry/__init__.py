"""The model zoo's cards (data, not code): ``representations/*.yaml`` and ``datasets/*.yaml``.

Installed as the package ``rftbench_registry`` so that the cards travel with the wheel; the
built-in plugin ``zoo`` (``plugins/zoo.py``) contributes them.
"""

from pathlib import Path

CARDS_DIR = Path(__file__).parent
REPRESENTATIONS_DIR = CARDS_DIR / "representations"
DATASETS_DIR = CARDS_DIR / "datasets"
