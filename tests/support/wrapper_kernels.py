"""Real ipykernel wrapper kernels from PyPI, installed their own way: for tests/test_adopt.py
and scripts/compatibility.py (one table, so that the doc and the tests cover the same kernels).

zsh and gnuplot themselves come from Debian (.ci/install-system.sh).
"""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import NamedTuple


class WrapperKernel(NamedTuple):
    installer: list[str]  # its installer, as `python -m ...` ([]: from its sdist, below)
    target: str  # the kernel class it launches, as module:Class
    code: str  # a cell, and text its output holds
    output: str


KERNELS: dict[str, WrapperKernel] = {
    "echo": WrapperKernel(["echo_kernel.install"], "echo_kernel.kernel:EchoKernel",
                          "hello", "hello"),
    "bash": WrapperKernel(["bash_kernel.install"], "bash_kernel.kernel:BashKernel",
                          "x=6; echo $((x * 7))", "42\n"),
    "zsh": WrapperKernel(["zsh_jupyter_kernel.install"], "zsh_jupyter_kernel.kernel:ZshKernel",
                         "print -r -- ${(U):-shout}", "SHOUT\r\n"),
    "calysto_scheme": WrapperKernel(["calysto_scheme", "install"],
                                    "calysto_scheme.kernel:CalystoScheme",
                                    "(define (sq x) (* x x)) (display (sq 9))", "81"),
    "gnuplot": WrapperKernel(["gnuplot_kernel", "install"], "gnuplot_kernel.kernel:GnuplotKernel",
                             'print sprintf("gp%d", 6*7)', "gp42"),
    # metakernel's own example kernels: on PyPI as 2015 sdists whose setup.py no longer
    # builds, so their one module is unpacked beside its kernelspec (see from_sdist).
    "metakernel_python": WrapperKernel([], "metakernel_python:MetaKernelPython",
                                       "print('p', 6 * 7)", "p 42\n"),
    "metakernel_echo": WrapperKernel([], "metakernel_echo:MetaKernelEcho", "said", "'said'"),
}


def install(name: str, root: Path, where: list[str], python: str = sys.executable) -> None:
    """Install kernel ``name`` as its README says; ``where`` is ``--prefix P`` or
    ``--sys-prefix``, and ``root`` the prefix its kernelspecs land in."""
    kernel = KERNELS[name]
    if not kernel.installer:
        from_sdist(name, root, python)
        return
    done = subprocess.run([python, "-m", *kernel.installer, *where], capture_output=True,
                          text=True, timeout=120, cwd=root)
    spec = root / "share" / "jupyter" / "kernels" / name / "kernel.json"
    # (zsh-jupyter-kernel's installer fails after writing, when it reads the spec back
    # from a prefix Jupyter does not search; the kernelspec it wrote is what counts.)
    assert spec.exists(), f"{name}: {done.stderr}"


def from_sdist(package: str, root: Path, python: str = sys.executable) -> None:
    """Download ``package``'s sdist from PyPI and install its kernelspec as its setup.py
    would (``python -m package``), the module found through the kernelspec's env."""
    downloads = root / "sdists"
    done = subprocess.run([python, "-m", "pip", "download", "-q", "--no-deps", "--no-binary",
                           ":all:", "-d", str(downloads), f"{package}==0.11.3"],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    [archive] = downloads.glob(f"{package}-*.zip")
    with zipfile.ZipFile(archive) as z:
        z.extractall(downloads)
    source = downloads / archive.name.removesuffix(".zip")
    spec = {"argv": [python, "-m", package, "-f", "{connection_file}"],
            "display_name": package, "env": {"PYTHONPATH": str(source)},
            "language": "python" if package.endswith("python") else "text"}
    folder = root / "share" / "jupyter" / "kernels" / package
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "kernel.json").write_text(json.dumps(spec))
