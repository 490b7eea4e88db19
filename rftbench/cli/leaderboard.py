"""``rftbench submit``, ``rftbench verify`` and ``rftbench leaderboard build|import|check``."""

from __future__ import annotations

from pathlib import Path

import typer
from pydantic import ValidationError

from ..cards import format_validation_error

from ._app import app, console, print_json, styled

leaderboard_app = typer.Typer(
    help="The leaderboard: import published results, build the static site, check submitted entries.",
    no_args_is_help=True,
)
app.add_typer(leaderboard_app, name="leaderboard")


@leaderboard_app.command("import")
def leaderboard_import(
    source: str = typer.Argument("guide2025", help="Which published results: `guide2025` (the reference study)."),
    path: Path = typer.Option(None, "--from", help="The results file (default: the copy in leaderboard/data/)."),
    out: Path = typer.Option(None, "--out", "-o", help="Where to write the entries, one JSON per line (default: leaderboard/entries/SOURCE.jsonl)."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary."),
) -> None:
    """Import published results as entries marked `imported` with their source.

    `guide2025` maps the 1,440 results of Heuillet et al. (arXiv:2508.14079) onto the entry
    schema: Linf/L2/L1/common accuracies → `linf:4/255`, `l2:2`, `l1:75`, `corruptions:3`;
    `FFT (50 epochs)` → protocol `fft`, 50 epochs; `Classic AT` → `classic_at`, `TRADES` → `trades`.
    """
    from rftbench_leaderboard import ENTRIES_DIR, GUIDE2025_CSV

    from ..leaderboard.importer import import_published

    path = path or GUIDE2025_CSV
    out = out or ENTRIES_DIR / f"{source}.jsonl"
    entries = import_published(source, path, out)
    if as_json:
        print_json({"source": source, "from": str(path), "out": str(out), "entries": len(entries)})
        return
    console.print(f"imported {len(entries)} entries from {path} → {out}")


def _checkpoint(value: str | None) -> dict[str, str] | None:
    if not value:
        return None
    repo, sep, revision = value.partition("@")
    if not sep:
        raise typer.BadParameter(
            f"{value!r}: expected REPO@REVISION with the commit sha, e.g. alice/my-rft-model@0123abc… (40 hex digits)",
            param_hint="--checkpoint",
        )
    return {"repo": repo, "revision": revision}


@app.command("submit")
def submit_command(
    result: Path = typer.Argument(..., help="A result record (JSON written by `rftbench run`), its run folder, or an entry file."),
    repo: str = typer.Option(..., "--repo", "-r", help="The leaderboard's dataset repo on the Hub, ORG/NAME."),
    checkpoint: str = typer.Option(None, "--checkpoint", "-c", help="The fine-tuned model on the Hub, REPO@COMMIT_SHA (needed for `rftbench verify`)."),
    submitter: str = typer.Option(None, "--submitter", help="Your name on the board (default: the Hub user of your token)."),
    publisher: str = typer.Option("hub", "--publisher", help="The publisher plugin (see `rftbench plugins --kind publisher`)."),
    endpoint: str = typer.Option(None, "--endpoint", help="Hub URL (default: HF_ENDPOINT or https://huggingface.co)."),
    outbox: Path = typer.Option(None, "--outbox", help="Where entries are kept locally (default: <rftbench cache>/leaderboard/outbox)."),
    rebuild: bool = typer.Option(False, "--rebuild", help="Build a fresh entry even if one is kept for this run."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Validate and check for duplicates, but open no pull request."),
    as_json: bool = typer.Option(False, "--json", help="Print the submission as JSON."),
) -> None:
    """Submit a result to the leaderboard: validate it, refuse duplicates, open a pull request.

    The token comes from `HF_TOKEN` or `hf auth login` and is never written anywhere. The
    entry is kept locally before anything is sent; if the Hub cannot be reached or refuses,
    nothing is published and the same command can be run again. Once the pull request is
    open, running it again only prints its URL.
    """
    from ..leaderboard.outbox import Outbox
    from ..leaderboard.submit import prepare_entry, submit
    from ..plugins import get_manager

    params = {"repo": repo, "endpoint": endpoint}
    try:
        pub = get_manager().get("publisher", publisher).build(**params)
    except ValidationError as err:  # the publisher's parameters
        raise typer.BadParameter(f"{repo!r}: expected ORG/NAME\n{format_validation_error(err)}", param_hint="--repo") from None
    box = Outbox(outbox)
    entry = prepare_entry(result, pub, box, submitter=submitter, checkpoint=_checkpoint(checkpoint), rebuild=rebuild)
    submission, kept = submit(entry, pub, box, dry_run=dry_run)
    if as_json:
        print_json({**submission.as_dict(), "kept": str(kept)})
        return
    if submission.status == "dry-run":
        console.print(f"dry run: entry {entry.id} is valid and new on {repo}; it would be added as {submission.path_in_repo}")
    elif submission.status == "already-submitted":
        console.print(f"entry {entry.id} was already submitted: {submission.pr_url}")
    else:
        console.print(f"opened pull request for entry {entry.id}: {submission.pr_url}")
    console.print(f"entry kept at {kept}", style="dim")


@leaderboard_app.command("build")
def leaderboard_build(
    repo: str = typer.Option(None, "--repo", "-r", help="Also gather the entries of this leaderboard dataset repo (ORG/NAME)."),
    results: list[Path] = typer.Option(None, "--results", help="Local result records or folders of them (repeatable)."),
    entries: list[Path] = typer.Option(None, "--entries", help="Entry files or folders of them (repeatable), e.g. a clone of the leaderboard repo."),
    published: bool = typer.Option(True, "--published/--no-published", help="Include the imported published results (leaderboard/entries/*.jsonl)."),
    out: Path = typer.Option(None, "--out", "-o", help="Output folder (default: leaderboard/site)."),
    title: str = typer.Option("rftbench leaderboard", "--title", help="The page title."),
    endpoint: str = typer.Option(None, "--endpoint", help="Hub URL (default: HF_ENDPOINT or https://huggingface.co)."),
    as_json: bool = typer.Option(False, "--json", help="Print a JSON summary."),
) -> None:
    """Build the static leaderboard site: a sortable, filterable table and plots, no server needed.

    The folder works as a static Hugging Face Space (it carries the Space's README.md);
    open `index.html` locally or upload the folder to a Space.
    """
    from huggingface_hub import get_token
    from rftbench_leaderboard import ENTRIES_DIR, SITE_DIR

    from ..leaderboard.build import build_site
    from ..leaderboard.collect import Collected, entries_from_folder, entries_from_results
    from ..leaderboard.entry import read_entries_jsonl
    from ..leaderboard.hub import HubLeaderboard

    collected = Collected()
    board = HubLeaderboard(repo, endpoint=endpoint) if repo else None
    if board is not None:  # the Hub first: offline, the command fails at once, before any other work
        from ..leaderboard.hub import check_reachable

        check_reachable(f"reading {repo}", board.where)
    if published:
        for path in sorted(ENTRIES_DIR.glob("*.jsonl")):
            collected.add("published", read_entries_jsonl(path))
    if board is not None:
        _, hub_entries = board.entries(get_token(), problems=collected.problems)
        collected.add("submitted", hub_entries)
    for path in entries or []:
        collected.add("submitted", entries_from_folder(path, problems=collected.problems) if path.is_dir() else [_load(path)])
    if results:
        collected.add("local", entries_from_results(results, problems=collected.problems))
    rows = collected.unique()
    if not rows:
        from ..leaderboard.errors import EntryError

        raise EntryError("no entries to show: pass --repo, --results or --entries, or keep --published")
    index = build_site(rows, out or SITE_DIR, title=title)
    counts = {o: sum(1 for origin, _ in rows if origin == o) for o in ("published", "submitted", "local")}
    if as_json:
        print_json({"index": str(index), "entries": len(rows), **counts, "problems": collected.problems})
        return
    for problem in collected.problems:
        console.print(styled("[yellow]skipped:[/] {}", problem), soft_wrap=True)
    console.print(f"built {index} with {len(rows)} entries ({', '.join(f'{v} {k}' for k, v in counts.items())})")


def _load(path: Path):
    from ..leaderboard.entry import load_entry

    return load_entry(path)


@leaderboard_app.command("check")
def leaderboard_check(
    paths: list[Path] = typer.Argument(None, help="Entry files or folders to check (e.g. the files a pull request adds)."),
    repo: str = typer.Option(None, "--repo", "-r", help="The leaderboard dataset repo, ORG/NAME."),
    pr: int = typer.Option(None, "--pr", help="Check this pull request of --repo against its main branch."),
    against: Path = typer.Option(None, "--against", help="A folder of the entries already on the board (for local files)."),
    endpoint: str = typer.Option(None, "--endpoint", help="Hub URL (default: HF_ENDPOINT or https://huggingface.co)."),
    as_json: bool = typer.Option(False, "--json", help="Print the report as JSON."),
) -> None:
    """The maintainers' check of a leaderboard pull request (usable from CI: exit 1 on any problem).

    Every new entry must be valid (schema, content hash, stored as entries/<id>.json), come
    from a run with a submitter and a date, carry no verification, and not duplicate an
    entry on main. A pull request may only add entries.

    `rftbench leaderboard check --repo ORG/NAME --pr 12` checks pull request #12 on the Hub;
    `rftbench leaderboard check new/*.json --against main/entries` checks local files.
    """
    from huggingface_hub import get_token

    from ..leaderboard.check import check_files, check_pull_request
    from ..leaderboard.hub import HubLeaderboard

    if pr is not None:
        if not repo:
            raise typer.BadParameter("--pr needs --repo ORG/NAME", param_hint="--pr")
        report = check_pull_request(HubLeaderboard(repo, endpoint=endpoint), pr, get_token())
    elif paths:
        if repo and against:
            raise typer.BadParameter("give --repo or --against, not both", param_hint="--against")
        if repo:
            board = HubLeaderboard(repo, endpoint=endpoint)
            _, folder = board.download(get_token())
            report = check_files(list(paths), folder)  # folder None: an empty board
        else:
            report = check_files(list(paths), against)
    else:
        raise typer.BadParameter("give entry files to check, or --repo ORG/NAME --pr N", param_hint="PATHS")
    if as_json:
        print_json(report.as_dict())
    else:
        for path in report.accepted:
            console.print(styled("[green]ok[/]      {}", path))
        for problem in report.problems:
            console.print(styled("[red]problem[/] {}", problem), soft_wrap=True)
        for warning in report.warnings:
            console.print(styled("[yellow]warning[/] {}", warning), soft_wrap=True)
        verdict = "[green]passed[/]" if report.ok else "[red]failed[/]"
        console.print(styled(f"check {verdict}: {{}} of {{}} entries accepted", len(report.accepted), len(report.checked)))
    if not report.ok:
        raise typer.Exit(1)


@app.command("verify")
def verify_command(
    entry: str = typer.Argument(..., help="An entry file, or an entry id (or its first digits) on --repo."),
    repo: str = typer.Option(None, "--repo", "-r", help="The leaderboard dataset repo to find the entry id on (ORG/NAME)."),
    n: int = typer.Option(200, "--n", "-n", help="Re-evaluate on the first N test images."),
    tolerance: float = typer.Option(0.01, "--tolerance", help="Allowed |measured − claimed| beyond 3 binomial standard errors of an N-image subset."),
    device: str = typer.Option("cpu", "--device", help="cpu or cuda."),
    endpoint: str = typer.Option(None, "--endpoint", help="Hub URL (default: HF_ENDPOINT or https://huggingface.co)."),
    write: Path = typer.Option(None, "--write", "-w", help="Write the entry with its verification block to this file."),
    as_json: bool = typer.Option(False, "--json", help="Print the comparison as JSON."),
) -> None:
    """Re-evaluate an entry from its checkpoint (pinned revision) and compare with its numbers.

    Exit 0 when every number agrees within the tolerance (clean accuracy and each threat
    model of the entry), 1 on a mismatch, which is reported with both numbers.
    """
    from huggingface_hub import get_token

    from ..leaderboard.entry import load_entry, write_entry
    from ..leaderboard.errors import EntryError
    from ..leaderboard.hub import HubLeaderboard
    from ..leaderboard.verify import verify_entry

    path = Path(entry)
    if path.is_file():
        target = load_entry(path)
    elif repo:
        _, entries = HubLeaderboard(repo, endpoint=endpoint).entries(get_token())
        matches = [e for e in entries if e.id.startswith(entry)]
        if len(matches) != 1:
            raise EntryError(f"{entry!r} matches {len(matches)} entries on {repo}; give more digits of the id")
        target = matches[0]
    else:
        raise EntryError(f"{entry}: no such entry file (to verify an entry on the Hub, pass its id and --repo ORG/NAME)")
    result = verify_entry(target, n=n, tolerance=tolerance, device=device, endpoint=endpoint)
    if write:
        write_entry(target.model_copy(update={"verification": result.verification()}), write)
    if as_json:
        print_json({"entry": target.id, "verified": result.verified, "n": result.n, "tolerance": tolerance,
                    "comparisons": [{**c.__dict__, "ok": c.ok} for c in result.comparisons],
                    "agreement": result.agreement, "flipped": result.flipped, "per_example_note": result.per_example_note})
    else:
        console.print(result.report(), markup=False)
    if not result.verified:
        raise typer.Exit(1)
