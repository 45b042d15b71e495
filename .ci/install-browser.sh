#!/usr/bin/env bash
# Installs Debian's Chromium for the end-to-end tests (tests/e2e) when it is missing.
# Idempotent. Playwright's own browser download is not used: CI machines reach package
# registries only. Needs root, or sudo.
set -euo pipefail
if command -v chromium >/dev/null 2>&1; then
    echo "chromium: $(command -v chromium)"
    exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update
$sudo apt-get install -y chromium
command -v chromium
