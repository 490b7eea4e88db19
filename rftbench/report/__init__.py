"""``rftbench report``: the literature's analyses of any set of results, as an HTML page and Markdown.

Inputs are results folders (``rftbench run`` / ``rftbench sweep`` output), result records, leaderboard
entries, entry collections (``.jsonl``), sweep files (their ``results_dir``) and the published
collection ``guide2025`` (the reference study's 1,440 results). The output folder holds
``index.html``, ``report.md`` and ``figures/``; see :func:`build_report`.
"""

from ._build import Report, build_report, render_html, render_markdown
from ._load import Loaded, Row, load_inputs

__all__ = ["Loaded", "Report", "Row", "build_report", "load_inputs", "render_html", "render_markdown"]
