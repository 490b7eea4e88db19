"""The leaderboard's data and site sources (data, not code), installed as ``rftbench_leaderboard``.

- ``templates/``: the jinja2 templates of the static site;
- ``static/``: its stylesheet and script (inlined into the page: the site needs no server and no CDN);
- ``data/guide2025_results.csv``: the reference study's 1,440 published results (Heuillet et al., 2025);
- ``entries/*.jsonl``: imported entries, one JSON entry per line (``rftbench leaderboard import``);
- ``site/``: the build output of ``rftbench leaderboard build`` (not committed).
"""

from pathlib import Path

LEADERBOARD_DIR = Path(__file__).parent
TEMPLATES_DIR = LEADERBOARD_DIR / "templates"
STATIC_DIR = LEADERBOARD_DIR / "static"
DATA_DIR = LEADERBOARD_DIR / "data"
ENTRIES_DIR = LEADERBOARD_DIR / "entries"
SITE_DIR = LEADERBOARD_DIR / "site"
GUIDE2025_CSV = DATA_DIR / "guide2025_results.csv"
