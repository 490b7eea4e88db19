"""The leaderboard: entries (schema + content hash), imports, the static site, submit, check and verify."""
