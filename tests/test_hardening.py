"""Issue 12: hostile input. One test (or more) per numbered defect of the issue; each failed on the old code.

Property-based tests (hypothesis) are in tests/test_hostile_properties.py; browser tests in
tests/test_leaderboard_site.py.
"""

from __future__ import annotations

import json
import os
import signal
import stat
import threading
import time
from pathlib import Path

import pytest
from huggingface_hub import CommitOperationAdd, CommitOperationDelete, HfApi

from cli_helpers import run_cli
from hub_server import WRITE_TOKEN, fake_hub, hub_env  # noqa: F401 - fixtures
from leaderboard_helpers import make_entry, make_record
from rftbench.errors import RftbenchError
from rftbench.leaderboard.build import render_site
from rftbench.leaderboard.check import check_files
from rftbench.leaderboard.entry import load_entry
from rftbench.leaderboard.errors import EntryError
from tests.plugins.engine_cards import engine_manager  # noqa: F401 - fixture

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


def hostile_entry(**source):
    """A valid entry whose fields are then replaced without validation (what a hand-edited file could hold)."""
    entry = make_entry()
    return entry.model_copy(update={"source": entry.source.model_copy(update=source)})


# ------------------------------------------------------------------ 1. javascript: links


@pytest.mark.parametrize("url", ["javascript:alert(1)", " JavaScript:alert(1)", "data:text/html,<script>x</script>",
                                 "vbscript:x", "//evil.example/x", "https:", "http://a b", "file:///etc/passwd"])
def test_1_only_http_links_pass_the_schema_and_the_check(tmp_path, url):
    data = json.loads(make_entry().to_json())
    data["source"]["url"] = url
    with pytest.raises(EntryError, match="source.url"):
        load_entry(data, check_hash=False)
    (tmp_path / "e.json").write_text(json.dumps(data))
    report = check_files([tmp_path / "e.json"])
    assert not report.ok and "source.url" in report.problems[0]


def test_1_a_link_that_skipped_the_schema_is_still_not_rendered():
    html = render_site([("local", hostile_entry(url="javascript:alert(document.domain)"))])
    assert "javascript:" not in html
    ok = render_site([("local", hostile_entry(url="https://arxiv.org/abs/2508.14079"))])
    assert 'href="https://arxiv.org/abs/2508.14079"' in ok


# ------------------------------------------------------------------ 2. labels that end or comment out the script


def labelled_entry(label: str):
    entry = make_entry()
    metrics = entry.model_dump(mode="json")["metrics"]
    metrics["threats"][label] = {"norm": "other", "eps": 1.0, "acc": 0.3}
    metrics.pop("sum"), metrics.pop("geom")
    return entry.resealed(metrics=metrics)


@pytest.mark.parametrize("label", ["<!--<script>:1", "</script><script>alert(1)</script>:1", "a&b<c>d:1", "x\u2028y:1"])
def test_2_no_label_can_end_or_comment_out_the_inline_data(label):
    html = render_site([("local", labelled_entry(label))])
    start = html.index('<script type="application/json" id="board-config">') + len('<script type="application/json" id="board-config">')
    inline = html[start:html.index("</script>", start)]
    assert not set("<>&") & set(inline)  # nothing HTML's script parser reacts to
    assert label in [t["label"] for t in json.loads(inline)["threats"]]  # JSON.parse reads the label back exactly


# ------------------------------------------------------------------ 3. pull requests that delete files


def open_pr(hub, operations) -> int:
    info = HfApi(endpoint=hub.url).create_commit("org/board", operations, commit_message="pr", repo_type="dataset",
                                                 create_pr=True, token=WRITE_TOKEN)
    return int(info.pr_url.rsplit("/", 1)[1])


def seed_main(hub, *entries, extra: dict | None = None) -> None:
    repo = hub.repos[("dataset", "org/board")]
    files = {**repo.commits[repo.branches["main"]], **{f"entries/{e.id}.json": e.to_json().encode() for e in entries}, **(extra or {})}
    repo.branches["main"] = repo.commit(files, repo.branches["main"], "seed")


def check_pr(capsys, hub, pr):
    code, out, _ = run_cli(capsys, "leaderboard", "check", "--repo", "org/board", "--pr", str(pr), "--endpoint", hub.url, "--json")
    return code, json.loads(out)


def test_3_a_pull_request_that_deletes_entries_or_the_readme_fails(fake_hub, capsys):
    old = make_entry("1" * 16)
    seed_main(fake_hub, old, extra={"README.md": b"# board\n"})
    new = make_entry("2" * 16)
    for victim in (f"entries/{old.id}.json", "README.md"):
        pr = open_pr(fake_hub, [CommitOperationAdd(f"entries/{new.id}.json", new.to_json().encode()), CommitOperationDelete(victim)])
        code, report = check_pr(capsys, fake_hub, pr)
        assert code == 1 and any(victim in p and "deletes" in p for p in report["problems"]), report


def test_3_entries_merged_after_a_pull_request_was_opened_are_not_deletions(fake_hub, capsys):
    seed_main(fake_hub, make_entry("1" * 16))
    new = make_entry("2" * 16)
    pr = open_pr(fake_hub, [CommitOperationAdd(f"entries/{new.id}.json", new.to_json().encode())])
    seed_main(fake_hub, make_entry("3" * 16))  # main moves on
    code, report = check_pr(capsys, fake_hub, pr)
    assert code == 0 and report["ok"], report


# ------------------------------------------------------------------ 4. verify: subfolder and data_root


@pytest.mark.parametrize("subfolder", ["/etc", "../outside", "a/../../b", "~/x", "C:/x"])
def test_4_checkpoint_subfolder_must_stay_in_the_repo(subfolder):
    data = json.loads(make_entry().to_json())
    data["checkpoint"]["subfolder"] = subfolder
    with pytest.raises(EntryError, match="checkpoint.subfolder"):
        load_entry(data, check_hash=False)


def test_4_a_symlinked_subfolder_is_refused_and_data_root_is_ignored(tmp_path, monkeypatch):
    from rftbench.leaderboard import verify

    snapshot = tmp_path / "snapshot"
    snapshot.mkdir()
    (snapshot / "model").symlink_to(tmp_path)  # a repo can hold a symbolic link
    entry = make_entry()
    entry = entry.model_copy(update={"checkpoint": entry.checkpoint.model_copy(update={"subfolder": "model"})})
    monkeypatch.setattr(verify, "snapshot_download", lambda *a, **k: str(snapshot))
    with pytest.raises(RftbenchError, match="outside"):
        verify.download_checkpoint(entry)
    seen = {}

    def load_splits(card, root="not passed", **kwargs):
        seen["root"] = root
        return {"test": []}

    monkeypatch.setattr("rftbench.data.load_splits", load_splits)
    hostile = make_entry(data_root=str(tmp_path / "created-by-a-stranger"))
    assert hostile.config["data_root"] == str(tmp_path / "created-by-a-stranger")  # the hostile value is really there
    verify.default_test_data(hostile)  # no except: it must get as far as loading the splits
    assert "root" in seen and seen["root"] is None and not (tmp_path / "created-by-a-stranger").exists()


# ------------------------------------------------------------------ 5. weights.filename outside the cache


@pytest.mark.parametrize("filename", ["../../x", "/etc/passwd", "a/../../b", ""])
def test_5_card_filenames_must_stay_in_the_cache(filename):
    from pydantic import ValidationError

    from rftbench.cards import Weights

    with pytest.raises(ValidationError, match="filename"):
        Weights(url="https://example.com/w.bin", sha256="0" * 64, filename=filename)


def test_5_an_absolute_filename_never_deletes_an_outside_file(tmp_path, monkeypatch):
    from rftbench.fetch import FetchError, url_file

    victim = tmp_path / "precious.txt"
    victim.write_text("keep me")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    for name in (str(victim), f"../{victim.name}"):
        with pytest.raises(FetchError, match="inside the cache"):
            url_file("https://example.com/w.bin", filename=name, sha256="0" * 64, folder=tmp_path / "cache")
    assert victim.read_text() == "keep me"


# ------------------------------------------------------------------ 6. pickled task files


def test_6_the_launcher_reads_json_and_never_unpickles(tmp_path):
    import pickle

    from rftbench.sweep import launch

    marker = tmp_path / "pwned"
    payload = tmp_path / "task"
    payload.write_bytes(pickle.dumps(_Evil(str(marker))))
    with pytest.raises(RftbenchError, match="invalid task file"):
        launch.main([str(payload), "rftbench.sweep.synthetic:synthetic_run"])
    assert not marker.exists()
    source = Path(launch.__file__).read_text() + Path(launch.__file__).with_name("worker.py").read_text()
    assert "import pickle" not in source and "pickle.load" not in source


class _Evil:
    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (Path.touch, (Path(self.path),))


def test_6_a_task_file_whose_config_does_not_match_its_hash_is_refused():
    from rftbench.config import RunConfig
    from rftbench.sweep.worker import RunTask, task_from_json, task_to_json

    config = RunConfig()
    text = task_to_json(RunTask("/r", config.config_hash(), config), "tok")
    task, token = task_from_json(text, "m:f")
    assert task.config == config and token == "tok"
    tampered = json.loads(text)
    tampered["config"]["epochs"] = 99
    with pytest.raises(RftbenchError, match="hashes to"):
        task_from_json(json.dumps(tampered), "m:f")


# ------------------------------------------------------------------ 7. a run completed twice


def test_7_a_worker_whose_claim_was_taken_over_writes_nothing(tmp_path):
    from rftbench.config import RunConfig
    from rftbench.sweep.store import Store
    from rftbench.sweep.synthetic import synthetic_run
    from rftbench.sweep.worker import RunTask, execute

    config = RunConfig(output_dir=str(tmp_path))
    digest = config.config_hash()
    store = Store(tmp_path, claim_timeout=60)
    store.check_writable()

    def paused_then_resumed(cfg):  # while "paused", the claim went stale and another worker took the run over
        store.claim_path(digest).write_text(json.dumps({"token": "other-worker", "host": "h", "pid": 1, "started": ""}))
        return synthetic_run(cfg)

    outcome = execute(RunTask(str(tmp_path), digest, config, run=paused_then_resumed, claim_timeout=60))
    assert outcome.status == "lost" and not store.result_path(digest).exists()
    assert json.loads(store.claim_path(digest).read_text())["token"] == "other-worker"  # the new owner's claim is left alone
    assert store.attempts(digest) == 0


def test_7_a_stale_heartbeat_never_touches_the_new_owners_claim(tmp_path):
    from rftbench.sweep.store import Claim

    path = tmp_path / "x.claim"
    path.write_text(json.dumps({"token": "new-owner"}))
    os.utime(path, (1, 1))
    Claim(path, "old-owner", 1.0).heartbeat()
    assert path.stat().st_mtime == 1


# ------------------------------------------------------------------ 8. Ctrl-C and SIGTERM in a sweep


@pytest.fixture(params=["default-handlers", "foreign-handlers"])
def signal_handlers(request):
    """The handlers in place when a sweep starts: Python's defaults, or ones a library left behind
    (Ray's driver exits on SIGTERM; here SIGINT is swallowed too). The sweep must stop either way."""
    import sys

    if request.param == "default-handlers":
        wanted = {signal.SIGINT: signal.default_int_handler, signal.SIGTERM: signal.SIG_DFL}
    else:
        wanted = {signal.SIGINT: lambda s, f: None, signal.SIGTERM: lambda s, f: sys.exit(s)}
    previous = {sig: signal.signal(sig, handler) for sig, handler in wanted.items()}
    yield request.param
    for sig, handler in previous.items():
        signal.signal(sig, handler)


@pytest.mark.parametrize("in_training", [True, False], ids=["in-training", "outside-training"])
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_8_a_signal_stops_the_sweep_without_counting_an_attempt(tmp_path, sig, in_training, signal_handlers):
    from rftbench.engine import RunInterrupted
    from rftbench.sweep import Store, load_sweep, run_sweep
    from sweep_helpers import write_sweep

    started = []

    def run_fn(config):
        started.append(config.seed)
        if not in_training:  # e.g. during evaluation: the signal's own default behaviour
            os.kill(os.getpid(), sig)
            time.sleep(0.5)
            return None
        asked = []
        previous = signal.signal(sig, lambda *a: asked.append(a))  # as the trainer does: finish the step, save
        try:
            os.kill(os.getpid(), sig)
            time.sleep(0.1)
        finally:
            signal.signal(sig, previous)
        assert asked
        raise RunInterrupted("interrupted at epoch 1, step 3; checkpoint saved. Run the same command again to resume.")

    sweep = load_sweep(write_sweep(tmp_path, 3))
    summary = run_sweep(sweep, run=run_fn, progress="none")
    assert summary.interrupted and not summary.failed and len(started) == 1  # stopped: the next runs never started
    assert Store(sweep.results_dir).attempts(sweep.runs[0].hash) == 0


def test_8_sigterm_saves_a_checkpoint_like_ctrl_c(engine_manager, tmp_path):
    from rftbench import run
    from rftbench.engine import RunInterrupted

    def term(trainer, epoch, step):
        if (epoch, step) == (0, 2):
            os.kill(os.getpid(), signal.SIGTERM)

    with pytest.raises(RunInterrupted, match="resume"):
        run(overrides=tiny(tmp_path), manager=engine_manager, callback=term)
    assert next((tmp_path / "runs").glob("*/checkpoints/LATEST")).is_file()


# ------------------------------------------------------------------ 9. n_eval checked before training


def tiny(tmp_path: Path, **extra) -> list[str]:
    values = {
        "representation": "micro_resnet.test", "dataset": "digits_small", "epochs": 1, "batch_size": 16,
        "threat": "{name: linf, eps: 4/255, attack: pgd, steps: 1}", "loss": "trades",
        "evaluation": "[{name: linf, eps: 4/255, attack: pgd, steps: 1}]", "n_eval": 16,
        "output_dir": str(tmp_path / "runs"), "seed": 0,
    }
    values.update(extra)
    return [f"{k}={v}" for k, v in values.items()]


def test_9_n_eval_larger_than_the_test_set_fails_before_training(engine_manager, tmp_path):
    from rftbench import run
    from rftbench.errors import ConfigError

    calls = []
    with pytest.raises(ConfigError, match=r"n_eval: 100000 is more than the \d+ images"):
        run(overrides=tiny(tmp_path, n_eval=100000), manager=engine_manager, callback=lambda *a: calls.append(a))
    assert not calls and not list((tmp_path / "runs").glob("*/checkpoints"))


# ------------------------------------------------------------------ 10. unreadable records


def test_10_a_truncated_record_in_a_sweep_is_moved_aside_and_rerun(tmp_path):
    from rftbench.sweep import Store, load_sweep, run_sweep
    from sweep_helpers import synthetic, write_sweep

    sweep = load_sweep(write_sweep(tmp_path, 2))
    store = Store(sweep.results_dir)
    store.check_writable()
    store.result_path(sweep.runs[0].hash).write_text('{"id": "trunc')
    store.failure_path(sweep.runs[1].hash).write_text("[not a failure record")
    summary = run_sweep(sweep, run=synthetic(tmp_path / "log"), progress="none")
    assert summary.complete and store.done() == {r.hash for r in sweep.runs}
    kept = sorted(p.name for p in (sweep.results_dir / "corrupt").iterdir())
    assert len(kept) == 2 and any(name.startswith(sweep.runs[0].hash) for name in kept)


def test_10_run_moves_an_unreadable_record_aside_and_runs_again(engine_manager, tmp_path):
    from rftbench import run
    from rftbench.config import load_config

    digest = load_config(overrides=tiny(tmp_path), manager=engine_manager).config_hash()
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / f"{digest}.json").write_text("{")
    assert run(overrides=tiny(tmp_path), manager=engine_manager).status == "complete"
    assert [p.name for p in (tmp_path / "runs").glob(f"{digest}.json.corrupt-*")]


# ------------------------------------------------------------------ 11. two runs of one config


def test_11_a_second_run_of_the_same_config_waits_or_says_who_holds_it(tmp_path):
    from rftbench.runner import RunLocked, run_lock, wait_for_run_lock

    folder = tmp_path / "run"
    order = []
    with run_lock(folder):
        with wait_for_run_lock(False), pytest.raises(RunLocked, match=rf"being run by host .* pid {os.getpid()}"):
            with run_lock(folder):
                pass

        def second():
            with run_lock(folder):
                order.append("second")

        thread = threading.Thread(target=second)
        thread.start()
        time.sleep(0.3)
        order.append("first done")
    thread.join(10)
    assert order == ["first done", "second"]


# ------------------------------------------------------------------ 12. file modes


def test_12_weights_and_records_get_the_same_permissions(tmp_path):
    import torch

    from rftbench.engine import save_weights
    from rftbench.results import write_record

    old = os.umask(0o022)
    try:
        save_weights(torch.nn.Linear(2, 2), tmp_path / "model.safetensors")
        write_record(make_record(), tmp_path / "r.json")
    finally:
        os.umask(old)
    modes = {stat.S_IMODE((tmp_path / n).stat().st_mode) for n in ("model.safetensors", "r.json")}
    assert modes == {0o644}


# ------------------------------------------------------------------ 13. tracebacks instead of named errors


def _bad_manifest(content):
    def make(tmp_path):
        from rftbench.engine import CheckpointStore

        store = CheckpointStore(tmp_path / "run", "abc")
        folder = store.root / "e0001-s000000"
        folder.mkdir(parents=True)
        (store.root / "LATEST").write_text(folder.name)
        (folder / "manifest.json").write_text(json.dumps(content))
        return store
    return make


@pytest.mark.parametrize("content", [None, [], {"config_hash": "abc", "step": 0, "files": {}},
                                     {"config_hash": "abc", "epoch": 1, "step": 0},
                                     {"config_hash": "abc", "epoch": 1, "step": 0, "files": {}},
                                     {"config_hash": "abc", "epoch": True, "step": 0, "files": {"model.safetensors": "x", "state.pt": "y"}}],
                         ids=["null", "list", "no-epoch", "no-files", "empty-files", "bool-epoch"])
def test_13_a_malformed_manifest_is_a_checkpoint_error(tmp_path, content):
    import torch

    from rftbench.engine import CheckpointError

    store = _bad_manifest(content)(tmp_path)
    with pytest.raises(CheckpointError, match="manifest"):
        store.load(torch.nn.Linear(2, 2))


CLI_CASES = {
    "non-utf8-config": (lambda p: (p / "c.yaml").write_bytes(b"epochs: \xff\xfe\n"), ["config", "show", "{d}/c.yaml"]),
    "bad-yaml-in-set": (None, ["config", "show", "--set", "loss={"]),
    "markup-in-message": (None, ["config", "show", "--set", "x[/x]=1"]),
    "markup-in-value": (None, ["config", "show", "--set", "representation=[/red]bogus[bold]"]),
    "duplicate-keys": (lambda p: (p / "c.yaml").write_text("epochs: 1\nepochs: 2\n"), ["config", "show", "{d}/c.yaml"]),
    "alias-bomb": (lambda p: (p / "c.yaml").write_text(ALIAS_BOMB), ["config", "show", "{d}/c.yaml"]),
    "eps-4/inf": (None, ["config", "show", "--set", "threat.eps=4/inf"]),
    "epochs-true": (None, ["config", "show", "--set", "epochs=true"]),
    "lr-nan": (None, ["config", "show", "--set", "optimizer.lr_head=.nan"]),
    "config-is-a-list": (lambda p: (p / "c.yaml").write_text("- 1\n"), ["config", "show", "{d}/c.yaml"]),
    "config-is-a-folder": (None, ["config", "show", "{d}"]),
    "truncated-model-json": (lambda p: ((p / "r").mkdir(), (p / "r" / "model.json").write_text('{"repr')),
                             ["eval", "{d}/r", "-t", "linf:4/255"]),
    "model-json-a-list": (lambda p: ((p / "r").mkdir(), (p / "r" / "model.json").write_text("[]")), ["eval", "{d}/r", "-t", "linf:4/255"]),
    "malformed-suite": (lambda p: (p / "s.yaml").write_text("- 5\n- {eps: 1}\n"), ["eval", "{d}/x.safetensors", "--suite", "{d}/s.yaml"]),
    "suite-bad-yaml": (lambda p: (p / "s.yaml").write_text("- {"), ["eval", "{d}/x.safetensors", "--suite", "{d}/s.yaml"]),
    "threat-item-garbage": (None, ["eval", "{d}/x.safetensors", "-t", "linf:eps={"]),
    "results-not-a-folder": (None, ["results", "{d}/nothing"]),
    "output-under-a-file": (lambda p: (p / "f").write_text(""), ["run", "--no-progress", "--set", "output_dir={d}/f/x"]),
    "output-under-proc": (None, ["run", "--no-progress", "--set", "output_dir=/proc/rftbench-x"]),
    "sweep-non-utf8": (lambda p: (p / "s.yaml").write_bytes(b"\xff"), ["sweep", "{d}/s.yaml", "--dry-run"]),
}
ALIAS_BOMB = "a: &a [x,x,x,x,x,x,x,x,x]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\nc: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n" \
             "d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\ne: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n" \
             "g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\nh: [*g,*g,*g,*g,*g,*g,*g,*g,*g]\n"


@pytest.mark.parametrize("case", sorted(CLI_CASES))
def test_13_14_hostile_cli_input_is_a_named_error(tmp_path, capsys, case):
    setup, argv = CLI_CASES[case]
    if setup:
        setup(tmp_path)
    start = time.process_time()  # CPU time: a loaded shared machine does not fail it
    code, out, err = run_cli(capsys, *(a.replace("{d}", str(tmp_path)) for a in argv))
    assert code == 2, (code, out, err)
    assert err.startswith("error:") or "\nerror:" in err, err
    assert "Traceback" not in err and "please report" not in err and len(err) < 5000
    assert time.process_time() - start < 20


def test_13_an_unexpected_exception_is_short_and_asks_for_a_report(capsys, monkeypatch):
    import rftbench.cli.config as cli_config

    monkeypatch.setattr(cli_config, "load_config", lambda *a, **k: {}["boom"])
    code, _, err = run_cli(capsys, "config", "show")
    assert code == 1 and "please report this" in err and "rftbench doctor" in err and "Traceback" not in err


@pytest.mark.parametrize("errno_", ["ENOSPC", "EACCES", "ENOTDIR", "EROFS"])
def test_13_disk_and_permission_errors_are_named(capsys, monkeypatch, errno_):
    import errno

    import rftbench.cli.config as cli_config

    def fail(*a, **k):
        raise OSError(getattr(errno, errno_), os.strerror(getattr(errno, errno_)), "/some/where")

    monkeypatch.setattr(cli_config, "load_config", fail)
    code, _, err = run_cli(capsys, "config", "show")
    assert code == 2 and err.startswith("error: /some/where:"), err


def test_13_no_network_is_a_named_error(capsys, monkeypatch):
    from urllib.error import URLError

    import rftbench.cli.config as cli_config

    monkeypatch.setattr(cli_config, "load_config", lambda *a, **k: (_ for _ in ()).throw(URLError("no route to host")))
    code, _, err = run_cli(capsys, "config", "show")
    assert code == 2 and "network error: no route to host" in err


def test_13_run_of_a_number_is_a_config_error():
    from rftbench import run
    from rftbench.errors import ConfigError

    with pytest.raises(ConfigError, match="got int"):
        run(123)


def test_13_markup_in_a_leaderboard_problem_prints_verbatim(tmp_path, capsys):
    folder = tmp_path / "a["
    folder.mkdir()
    (folder / "x].json").write_text("{not json")  # the problem names the file: ".../a[/x].json"
    code, out, err = run_cli(capsys, "leaderboard", "check", str(folder / "x].json"))
    assert code == 1 and "MarkupError" not in out + err and f"{folder}/x].json" in out.replace("\n", "")


# ------------------------------------------------------------------ 14. silent acceptance and silent skipping


def test_14_results_and_build_name_the_records_they_skip(tmp_path, capsys):
    from rftbench.results import write_record

    write_record(make_record("a" * 16), tmp_path / f"{'a' * 16}.json")
    (tmp_path / f"{'b' * 16}.json").write_text('{"id": "bbbb')
    code, out, err = run_cli(capsys, "results", str(tmp_path), "-F", "jsonl")
    assert code == 0 and f"{'b' * 16}.json" in err and "skipped" in err and out.count("\n") == 1
    code, out, err = run_cli(capsys, "leaderboard", "build", "--results", str(tmp_path), "--no-published",
                             "--out", str(tmp_path / "site"))
    assert code == 0 and "skipped" in out and f"{'b' * 16}.json" in out


def test_14_yaml_duplicates_and_alias_bombs_are_refused_quickly():
    from rftbench.yamlfile import YamlError, loads

    with pytest.raises(YamlError, match="appears twice"):
        loads("a: 1\nb: 2\na: 3\n")
    start = time.process_time()
    with pytest.raises(YamlError, match="expands to more than") as err:
        loads(ALIAS_BOMB)
    assert time.process_time() - start < 2 and len(str(err.value)) < 400
    with pytest.raises(YamlError, match="recursive"):
        loads("&a [*a]")
    assert loads("base: &b {x: 1}\nother:\n  <<: *b\n  y: 2\n") == {"base": {"x": 1}, "other": {"x": 1, "y": 2}}


@pytest.mark.parametrize(("shape", "scale", "suite", "match"), [
    ((1, 5, 5), 1.0, ["corruptions"], "5×5 pixels; common corruptions need at least 8×8"),
    ((1, 8, 8), 255.0, [{"name": "linf", "eps": "4/255", "attack": "fgsm"}], r"floats in \[0, 1\]"),
    ((2, 8, 8), 1.0, [{"name": "linf", "eps": "4/255", "attack": "fgsm"}], "1 or 3 channels"),
])
def test_14_evaluate_refuses_images_it_cannot_measure(builtins, shape, scale, suite, match):
    import torch
    from torch.utils.data import TensorDataset

    from rftbench.evaluation import evaluate
    from rftbench.evaluation.evaluate import EvaluationError

    data = TensorDataset(torch.rand(4, *shape) * scale, torch.zeros(4, dtype=torch.long))
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(int(torch.tensor(shape).prod()), 2))
    with pytest.raises(EvaluationError, match=match):
        evaluate(model, data, suite, manager=builtins, progress=False)


def test_13_a_full_disk_while_plotting_leaves_no_empty_image(tmp_path, monkeypatch):
    import errno

    from rftbench.evaluation import plots

    class Figure:
        def savefig(self, target, **kwargs):  # a path or an open file, as matplotlib accepts
            target.write(b"") if hasattr(target, "write") else Path(target).write_bytes(b"")
            raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError):
        plots._save(Figure(), tmp_path / "bars.png")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("content", ['"/etc/passwd"', '"."', "[]", "7"])
def test_4_an_entry_file_holding_a_json_string_is_not_read_as_a_path(tmp_path, content):
    (tmp_path / "e.json").write_text(content)
    (tmp_path / "e.jsonl").write_text(content + "\n")
    report = check_files([tmp_path / "e.json"])
    assert not report.ok and "JSON object" in report.problems[0] and "passwd" not in report.problems[0].split(":", 1)[1]
    from rftbench.leaderboard.entry import read_entries_jsonl

    with pytest.raises(EntryError, match="JSON object"):
        read_entries_jsonl(tmp_path / "e.jsonl")
