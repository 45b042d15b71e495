#!/usr/bin/env bash
# Installs what the tests need from Debian when it is missing: Chromium for the end-to-end
# tests (tests/e2e), zsh and gnuplot for the real wrapper kernels kernelkit adopts
# (tests/test_adopt.py: zsh-jupyter-kernel and gnuplot_kernel drive them); OpenSSH's server
# for the remote-kernel tests (tests/test_remote.py starts its own sshd on 127.0.0.2);
# valgrind for `python -m bench.instructions` (instruction counts, tests/test_bench.py).
# Idempotent. Playwright's own browser download is not used: CI machines reach package
# registries only. Needs root, or sudo.
set -euo pipefail
missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v zsh >/dev/null 2>&1 || missing+=(zsh)
command -v gnuplot >/dev/null 2>&1 || missing+=(gnuplot-nox)
[ -x /usr/sbin/sshd ] || missing+=(openssh-server)
command -v valgrind >/dev/null 2>&1 || missing+=(valgrind)
if [ ${#missing[@]} -eq 0 ]; then
    echo "system packages: present (chromium, zsh, gnuplot, sshd, valgrind)"
    exit 0
fi
sudo=""
if [ "$(id -u)" -ne 0 ]; then
    sudo="sudo"
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update
$sudo apt-get install -y "${missing[@]}"
command -v chromium zsh gnuplot ssh-keygen valgrind callgrind_control
ls /usr/sbin/sshd
