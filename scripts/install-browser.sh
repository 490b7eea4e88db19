#!/usr/bin/env bash
# Install what the leaderboard site's headless-browser test needs (tests/test_leaderboard_site.py):
# Debian's chromium and its matching chromedriver (the selenium client comes with `pip install -e ".[dev]"`).
# Without them that test is skipped with this script named as the fix. Run as root (or with sudo).
set -euo pipefail

if ! command -v chromium >/dev/null 2>&1 || ! command -v chromedriver >/dev/null 2>&1; then
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -q
    $SUDO apt-get install -y -q --no-install-recommends chromium chromium-driver
fi

chromium --version
chromedriver --version
