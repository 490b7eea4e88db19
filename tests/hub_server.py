"""A local fake of the part of the Hugging Face Hub API that rftbench's leaderboard uses.

The tests point the real ``huggingface_hub`` client at it (``endpoint=``), so the code path is
the one users run. It speaks: whoami, README metadata validation, repo info (``/api/{type}s/{repo}[/revision/{rev}]``),
tree listing, preupload, commit (with ``create_pr=1``: a ``refs/pr/N`` ref and a discussion
URL), and file download (``HEAD``/``GET`` ``…/resolve/{rev}/{path}``). Tokens are ``write``,
``read`` or ``expired``; unknown tokens are refused like expired ones (401).
"""

from __future__ import annotations

import base64
import hashlib
import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

REPO_TYPES = {"models": "model", "datasets": "dataset", "spaces": "space"}


def blob_oid(content: bytes) -> str:
    """git's blob sha1, as the Hub reports it."""
    return hashlib.sha1(b"blob %d\0" % len(content) + content).hexdigest()


@dataclass
class Repo:
    """A repo: commits (sha → files), branches, pull requests."""

    repo_id: str
    repo_type: str
    commits: dict[str, dict[str, bytes]] = field(default_factory=dict)
    branches: dict[str, str] = field(default_factory=dict)
    prs: list[dict[str, Any]] = field(default_factory=list)
    parents: dict[str, str | None] = field(default_factory=dict)

    def commit(self, files: dict[str, bytes], parent: str | None, message: str) -> str:
        seed = json.dumps([parent, message, sorted((p, blob_oid(c)) for p, c in files.items()), len(self.commits)])
        sha = hashlib.sha1(seed.encode()).hexdigest()
        self.commits[sha] = dict(files)
        self.parents[sha] = parent
        return sha

    def history(self, sha: str) -> list[str]:
        """``sha`` and its ancestors, newest first (each commit has one parent here)."""
        out: list[str] = []
        current: str | None = sha
        while current is not None:
            out.append(current)
            current = self.parents.get(current)
        return out

    def resolve(self, revision: str) -> str | None:
        if revision in self.branches:
            return self.branches[revision]
        if revision in self.commits:
            return revision
        if revision.startswith("refs/pr/"):
            for pr in self.prs:
                if pr["ref"] == revision:
                    return pr["sha"]
        return None


class FakeHub:
    """The server's state; ``url`` is its endpoint. Use as a context manager or start()/stop()."""

    def __init__(self) -> None:
        self.repos: dict[tuple[str, str], Repo] = {}
        self.tokens: dict[str, tuple[str, str]] = {}  # token → (user, "write" | "read" | "expired")
        self.requests: list[tuple[str, str, str | None]] = []  # (method, path, authorization)
        self.fail_commits = 0  # answer the next N commit calls with 500
        self._server: ThreadingHTTPServer | None = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ setup

    def add_token(self, token: str, user: str, role: str = "write") -> None:
        self.tokens[token] = (user, role)

    def create_repo(self, repo_id: str, repo_type: str = "dataset", files: dict[str, bytes] | None = None) -> Repo:
        repo = Repo(repo_id, repo_type)
        repo.branches["main"] = repo.commit(dict(files or {}), None, "initial commit")
        self.repos[(repo_type, repo_id)] = repo
        return repo

    def merge(self, repo_id: str, num: int, repo_type: str = "dataset") -> str:
        """Merge pull request ``num`` into main (what a maintainer does on the Hub)."""
        repo = self.repos[(repo_type, repo_id)]
        pr = next(p for p in repo.prs if p["num"] == num)
        files = {**repo.commits[repo.branches["main"]], **repo.commits[pr["sha"]]}
        repo.branches["main"] = repo.commit(files, repo.branches["main"], f"merge #{num}")
        pr["status"] = "merged"
        return repo.branches["main"]

    def start(self, port: int = 0) -> FakeHub:
        """Serve on ``port`` (0: any free one); a stopped hub can be started again on its old port."""
        hub = self

        class Handler(_Handler):
            state = hub

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeHub:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None, "start the fake hub first"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    state: FakeHub

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - silence the default stderr log
        pass

    # ------------------------------------------------------------------ plumbing

    def _send(self, status: int, body: bytes = b"", headers: dict[str, str] | None = None, content_type: str = "application/json") -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, data: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(data).encode(), headers)

    def _error(self, status: int, message: str, code: str | None = None) -> None:
        headers = {"X-Error-Message": message}
        if code:
            headers["X-Error-Code"] = code
        self._json(status, {"error": message}, headers)

    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _user(self) -> tuple[str | None, str | None, bool]:
        """(user, role, refused): refused when a token was sent but is unknown or expired."""
        auth = self.headers.get("Authorization")
        if not auth:
            return None, None, False
        token = auth.removeprefix("Bearer ").strip()
        user, role = self.state.tokens.get(token, (None, "expired"))
        return user, role, role == "expired"

    # ------------------------------------------------------------------ routing

    def do_HEAD(self) -> None:
        self._route()

    def do_GET(self) -> None:
        self._route()

    def do_POST(self) -> None:
        self._route()

    def _route(self) -> None:
        url = urlsplit(self.path)
        parts = [unquote(p) for p in url.path.split("/") if p]
        query = parse_qs(url.query)
        with self.state._lock:
            self.state.requests.append((self.command, url.path, self.headers.get("Authorization")))
        user, role, refused = self._user()
        if refused:
            return self._error(401, "Invalid credentials in Authorization header")
        if parts[:2] == ["api", "validate-yaml"] and self.command == "POST":
            self._body()
            return self._json(200, {"errors": [], "warnings": []})
        if parts[:2] == ["api", "whoami-v2"]:
            if user is None:
                return self._error(401, "Invalid credentials in Authorization header")
            return self._json(200, {"type": "user", "name": user, "auth": {"accessToken": {"role": role}}})
        if parts and parts[0] == "api" and len(parts) >= 4 and parts[1] in REPO_TYPES:
            repo = self._repo(REPO_TYPES[parts[1]], f"{parts[2]}/{parts[3]}")
            if repo is None:
                return None
            rest = parts[4:]
            if not rest or rest[0] == "revision":
                return self._info(repo, rest[1] if len(rest) > 1 else "main")
            if rest[0] == "commits" and len(rest) >= 2:
                return self._commits(repo, "/".join(rest[1:]))
            if rest[0] == "tree" and len(rest) >= 2:
                return self._tree(repo, rest[1], "/".join(rest[2:]))
            if rest[0] == "preupload" and self.command == "POST":
                return self._preupload(repo, rest[1], role)
            if rest[0] == "commit" and self.command == "POST":
                return self._commit(repo, rest[1], user, role, query.get("create_pr", ["0"])[0] == "1")
            return self._error(404, f"no route {url.path}")
        if "resolve" in parts:
            i = parts.index("resolve")
            prefix = parts[:i]
            repo_type = REPO_TYPES.get(prefix[0], None) if len(prefix) == 3 else "model"
            if repo_type is None or len(prefix) not in (2, 3) or len(parts) < i + 3:
                return self._error(404, f"no route {url.path}")
            repo = self._repo(repo_type, "/".join(prefix[-2:]))
            if repo is None:
                return None
            return self._resolve(repo, parts[i + 1], "/".join(parts[i + 2 :]))
        return self._error(404, f"no route {url.path}")

    def _repo(self, repo_type: str, repo_id: str) -> Repo | None:
        repo = self.state.repos.get((repo_type, repo_id))
        if repo is None:
            self._error(404, "Repository not found", "RepoNotFound")
        return repo

    def _sha(self, repo: Repo, revision: str) -> str | None:
        sha = repo.resolve(revision)
        if sha is None:
            self._error(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        return sha

    # ------------------------------------------------------------------ endpoints

    def _info(self, repo: Repo, revision: str) -> None:
        sha = self._sha(repo, revision)
        if sha is None:
            return
        files = repo.commits[sha]
        self._json(200, {
            "id": repo.repo_id, "_id": repo.repo_id, "sha": sha, "private": False, "disabled": False,
            "lastModified": "2025-09-01T00:00:00.000Z", "tags": [],
            "siblings": [{"rfilename": p} for p in sorted(files)],
        })

    def _commits(self, repo: Repo, revision: str) -> None:
        sha = self._sha(repo, revision)
        if sha is None:
            return
        self._json(200, [
            {"id": c, "authors": [{"user": "someone"}], "date": "2025-09-01T00:00:00.000Z", "title": "commit", "message": ""}
            for c in repo.history(sha)
        ])

    def _tree(self, repo: Repo, revision: str, path: str) -> None:
        sha = self._sha(repo, revision)
        if sha is None:
            return
        prefix = f"{path.rstrip('/')}/" if path else ""
        items = [
            {"type": "file", "path": p, "size": len(c), "oid": blob_oid(c)}
            for p, c in sorted(repo.commits[sha].items())
            if p.startswith(prefix)
        ]
        self._json(200, items)

    def _preupload(self, repo: Repo, revision: str, role: str | None) -> None:
        if role is None:
            return self._error(401, "Invalid credentials in Authorization header")
        data = json.loads(self._body() or b"{}")
        sha = repo.resolve(revision) or repo.branches["main"]
        current = repo.commits[sha]
        files = [
            {"path": f["path"], "uploadMode": "regular", "shouldIgnore": False,
             "oid": blob_oid(current[f["path"]]) if f["path"] in current else None}
            for f in data.get("files", [])
        ]
        self._json(200, {"files": files})

    def _commit(self, repo: Repo, revision: str, user: str | None, role: str | None, create_pr: bool) -> None:
        body = self._body()
        if user is None:
            return self._error(401, "Invalid credentials in Authorization header")
        if role != "write":
            return self._error(403, "You don't have the rights to create a pull request with this token")
        if self.state.fail_commits > 0:
            self.state.fail_commits -= 1
            return self._error(500, "Internal Error - We're working hard to fix this as soon as possible!")
        lines = [json.loads(line) for line in body.decode().splitlines() if line.strip()]
        header = next(item["value"] for item in lines if item["key"] == "header")
        base_sha = header.get("parentCommit") or repo.resolve(revision)
        if base_sha is None or base_sha not in repo.commits:
            return self._error(404, f"Invalid rev id: {revision}", "RevisionNotFound")
        files = dict(repo.commits[base_sha])
        for item in lines:
            if item["key"] == "file":
                value = item["value"]
                files[value["path"]] = base64.b64decode(value["content"])
            elif item["key"] == "deletedFile":
                files.pop(item["value"]["path"], None)
            elif item["key"] != "header":
                return self._error(400, f"unsupported commit operation {item['key']}")
        sha = repo.commit(files, base_sha, header["summary"])
        prefix = f"{self.state.url}/{repo.repo_type}s/{repo.repo_id}" if repo.repo_type != "model" else f"{self.state.url}/{repo.repo_id}"
        result = {"commitUrl": f"{prefix}/commit/{sha}", "commitOid": sha, "success": True}
        if create_pr:
            num = len(repo.prs) + 1
            repo.prs.append({"num": num, "ref": f"refs/pr/{num}", "sha": sha, "title": header["summary"],
                             "description": header.get("description", ""), "author": user, "status": "open"})
            result["pullRequestUrl"] = f"{prefix}/discussions/{num}"
        else:
            repo.branches[revision] = sha
        self._json(200, result)

    def _resolve(self, repo: Repo, revision: str, path: str) -> None:
        sha = self._sha(repo, revision)
        if sha is None:
            return
        content = repo.commits[sha].get(path)
        if content is None:
            return self._error(404, "Entry not found", "EntryNotFound")
        oid = blob_oid(content)
        self._send(200, content, {"X-Repo-Commit": sha, "ETag": f'"{oid}"'}, content_type="application/octet-stream")


# ---------------------------------------------------------------------- pytest fixtures (import them into a test module)

import pytest  # noqa: E402

WRITE_TOKEN = "hf_testWriteToken1234567890abcdef"
READ_TOKEN = "hf_testReadToken1234567890abcdef"
EXPIRED_TOKEN = "hf_testExpiredToken1234567890abcdef"


@pytest.fixture
def hub_env(tmp_path, monkeypatch):
    """An isolated huggingface_hub: empty cache, no token file, no telemetry, no progress bars."""
    from huggingface_hub import constants

    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf-cache"))
    monkeypatch.setattr(constants, "HF_TOKEN_PATH", str(tmp_path / "hf-token-absent"))
    from huggingface_hub.utils import disable_progress_bars, enable_progress_bars

    disable_progress_bars()
    monkeypatch.setattr(constants, "HF_HUB_DISABLE_PROGRESS_BARS", True)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HUGGING_FACE_HUB_TOKEN", raising=False)
    monkeypatch.setenv("HF_HUB_DISABLE_TELEMETRY", "1")
    monkeypatch.setenv("RFTBENCH_CACHE", str(tmp_path / "rftbench-cache"))
    yield tmp_path
    enable_progress_bars()


@pytest.fixture
def fake_hub(hub_env):
    """A running fake Hub with a write, a read and an expired token, and the dataset repo org/board."""
    hub = FakeHub()
    hub.add_token(WRITE_TOKEN, "alice", "write")
    hub.add_token(READ_TOKEN, "bob", "read")
    hub.add_token(EXPIRED_TOKEN, "carol", "expired")
    hub.create_repo("org/board", files={"README.md": b"# leaderboard\n"})
    with hub:
        yield hub
