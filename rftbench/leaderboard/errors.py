"""Errors of the leaderboard: each names the entry or repo, the problem and the fix."""

from __future__ import annotations

from ..errors import RftbenchError


class EntryError(RftbenchError):
    """An entry is missing fields, has out-of-range values, or cannot be read."""


class TamperedEntryError(EntryError):
    """An entry's content does not match its content hash (metrics edited after sealing)."""


class DuplicateEntryError(EntryError):
    """An entry is already on the leaderboard (same content hash, or same run and checkpoint)."""


class HubError(RftbenchError):
    """The Hugging Face Hub refused a request or could not be reached."""


class AuthError(HubError):
    """No Hugging Face token, or the token was refused (expired, revoked, read-only)."""


class RepoNotFoundError(HubError):
    """The leaderboard or checkpoint repo does not exist (or the token cannot see it)."""


class OfflineError(HubError):
    """The Hub could not be reached (no network, DNS failure, time-out, offline mode)."""


class VerificationError(RftbenchError):
    """An entry cannot be verified (no checkpoint, missing evaluation pieces) or its numbers disagree."""
