"""``kernelkit install``, ``list`` and ``remove`` as users run them; the packaged kernelspec."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import cli_support
import pytest
from cli_support import (
    MYMOD,
    assert_echo_kernel,
    assert_usage_error,
    jupyter_kernelspecs,
    kernelkit_list,
    managed,
    mode,
    run_must_fail,
    umask,
)

from conftest import kernelkit as cli
from conftest import stdout_of

# cli_support's fixtures (data_dir is autouse): pytest finds them among this module's names.
data_dir_fixture = cli_support.data_dir_fixture
conn_file_fixture = cli_support.conn_file_fixture

# -- kernelspecs -----------------------------------------------------------------


def test_install_user(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # In a virtualenv Jupyter prefers sys.prefix over the user's data dir, where the
    # packaged kernelkit-echo would shadow this one; say we prefer the user's (see the
    # xfail test below for what kernelkit list gets wrong without this).
    monkeypatch.setenv("JUPYTER_PREFER_ENV_PATH", "0")
    done = cli("install", "echo", "--user")
    assert done.returncode == 0, done.stderr
    dest = data_dir / "kernels" / "kernelkit-echo"
    assert str(dest) in done.stdout
    spec = json.loads((dest / "kernel.json").read_text())
    assert spec["argv"] == [
        sys.executable,
        "-m",
        "kernelkit",
        "run",
        "echo",
        "-f",
        "{connection_file}",
    ]
    assert spec["interrupt_mode"] == "signal"
    assert spec["display_name"] == "Echo (kernelkit)"
    assert spec["language"] == "no-op"

    found = jupyter_kernelspecs()["kernelkit-echo"]
    assert Path(found["resource_dir"]) == dest
    assert found["spec"]["argv"][0] == sys.executable
    assert found["spec"]["interrupt_mode"] == "signal"
    assert kernelkit_list()["kernelkit-echo"] == ["echo", str(dest)]

    with managed("kernelkit-echo") as kc:
        assert_echo_kernel(kc)


@pytest.mark.parametrize(("mask", "file_mode", "dir_mode"),
                         [(0o000, 0o644, 0o755), (0o022, 0o644, 0o755), (0o077, 0o600, 0o700)])
def test_install_is_not_world_writable_whatever_the_umask(
    tmp_path: Path, mask: int, file_mode: int, dir_mode: int
) -> None:
    prefix = tmp_path / "env"
    with umask(mask):
        done = cli("install", "echo", "--name", "kk-umask", "--prefix", str(prefix))
    assert done.returncode == 0, done.stderr
    dest = prefix / "share" / "jupyter" / "kernels" / "kk-umask"
    assert mode(dest / "kernel.json") == file_mode
    folder = dest
    while folder != tmp_path:  # every folder install created
        assert mode(folder) == dir_mode, (folder, oct(mode(folder)))
        folder = folder.parent
    # Installing again replaces a kernel.json anyone could write with one they cannot.
    (dest / "kernel.json").chmod(0o666)
    with umask(mask):
        assert cli("install", "echo", "--name", "kk-umask", "--prefix", str(prefix)).returncode == 0
    assert mode(dest / "kernel.json") == file_mode
    assert json.loads((dest / "kernel.json").read_text())["argv"][3:5] == ["run", "echo"]


def test_install_does_not_write_through_a_planted_symlink(tmp_path: Path) -> None:
    prefix = tmp_path / "env"
    dest = prefix / "share" / "jupyter" / "kernels" / "kk-link"
    dest.mkdir(parents=True)
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me\n")
    (dest / "kernel.json").symlink_to(victim)
    assert cli("install", "echo", "--name", "kk-link", "--prefix", str(prefix)).returncode == 0
    assert victim.read_text() == "keep me\n"
    assert not (dest / "kernel.json").is_symlink()


def test_list_agrees_with_jupyter_about_shadowed_names(data_dir: Path) -> None:
    """`kernelkit list` must show the kernelspec Jupyter would actually start."""
    assert cli("install", "echo", "--user").returncode == 0  # same name as the packaged one
    jupyters = Path(jupyter_kernelspecs()["kernelkit-echo"]["resource_dir"])
    ours = Path(kernelkit_list()["kernelkit-echo"][1])
    assert ours == jupyters


def test_install_interrupt_mode_message(data_dir: Path) -> None:
    done = cli("install", "echo", "--name", "kk-msg", "--interrupt-mode", "message")
    assert done.returncode == 0, done.stderr
    spec = json.loads((data_dir / "kernels" / "kk-msg" / "kernel.json").read_text())
    assert spec["interrupt_mode"] == "message"
    assert jupyter_kernelspecs()["kk-msg"]["spec"]["interrupt_mode"] == "message"


def test_install_name_and_display_name(data_dir: Path) -> None:
    done = cli("install", "echo", "--name", "My-Parrot", "--display-name", "A Parrot")
    assert done.returncode == 0, done.stderr
    dest = data_dir / "kernels" / "my-parrot"  # Jupyter's kernelspec names are lower case
    assert (dest / "kernel.json").is_file()
    found = jupyter_kernelspecs()["my-parrot"]
    assert Path(found["resource_dir"]) == dest
    assert found["spec"]["display_name"] == "A Parrot"
    assert not (data_dir / "kernels" / "kernelkit-echo").exists()
    assert kernelkit_list()["my-parrot"] == ["echo", str(dest)]
    assert cli("remove", "My-Parrot").returncode == 0
    assert not dest.exists()


def test_install_prefix(tmp_path: Path, data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    prefix = tmp_path / "env"
    done = cli("install", "echo", "--name", "kk-prefixed", "--prefix", str(prefix))
    assert done.returncode == 0, done.stderr
    dest = prefix / "share" / "jupyter" / "kernels" / "kk-prefixed"
    spec = json.loads((dest / "kernel.json").read_text())
    assert spec["argv"][:5] == [sys.executable, "-m", "kernelkit", "run", "echo"]
    assert not (data_dir / "kernels").exists()
    monkeypatch.setenv(
        "JUPYTER_PATH",
        os.pathsep.join([str(prefix / "share" / "jupyter"), os.environ["JUPYTER_PATH"]]),
    )
    assert Path(jupyter_kernelspecs()["kk-prefixed"]["resource_dir"]) == dest


def test_remove(data_dir: Path) -> None:
    assert cli("install", "echo", "--name", "kk-gone").returncode == 0
    dest = data_dir / "kernels" / "kk-gone"
    assert "kk-gone" in jupyter_kernelspecs()

    done = cli("remove", "kk-gone")
    assert done.returncode == 0, done.stderr
    assert str(dest) in done.stdout
    assert not dest.exists()
    assert "kk-gone" not in jupyter_kernelspecs()
    assert "kk-gone" not in kernelkit_list()
    assert "no kernelspec named 'kk-gone'" in assert_usage_error(cli("remove", "kk-gone"))


def test_remove_refuses_other_kernels(data_dir: Path) -> None:
    other = data_dir / "kernels" / "not-ours"
    other.mkdir(parents=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Someone else's",
        "language": "python",
    }
    (other / "kernel.json").write_text(json.dumps(spec))
    assert "not-ours" in jupyter_kernelspecs()

    line = assert_usage_error(cli("remove", "not-ours"))
    assert "not a kernelkit kernel" in line
    assert (other / "kernel.json").is_file()
    assert "not-ours" not in kernelkit_list()


def test_install_module_from_current_folder(tmp_path: Path, data_dir: Path) -> None:
    project = tmp_path / "project"
    project.mkdir()
    (project / "kk_cli_mymod.py").write_text(MYMOD)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()

    done = cli("install", "kk_cli_mymod:MyKernel", cwd=project)
    assert done.returncode == 0, done.stderr
    spec = json.loads((data_dir / "kernels" / "mykernel" / "kernel.json").read_text())
    argv = spec["argv"]
    assert "--path" in argv
    assert os.path.samefile(argv[argv.index("--path") + 1], project)
    assert spec["display_name"] == "MyImpl"
    assert spec["language"] == "mylang"

    # Without the recorded path the module is not found from another folder...
    lost = run_must_fail("run", "kk_cli_mymod:MyKernel", "-f", "unused.json", cwd=elsewhere)
    assert "no module named 'kk_cli_mymod'" in assert_usage_error(lost)
    # ...but the kernelspec starts from there.
    with managed("mykernel", cwd=elsewhere) as kc:
        info = kc.kernel_info(reply=True, timeout=20)
        assert info["content"]["implementation"] == "MyImpl"
        out = stdout_of(kc, "hi")
        assert out.startswith("mymod:hi cwd=")
        assert os.path.samefile(out.split("cwd=", 1)[1], elsewhere)


def test_install_env_finds_a_module_outside_site_packages(tmp_path: Path, data_dir: Path) -> None:
    """--env PYTHONPATH=DIR: the kernelspec's env, and the module is found at install too."""
    kernels = tmp_path / "my-kernels"
    kernels.mkdir()
    (kernels / "kk_cli_envmod.py").write_text(MYMOD)
    done = cli("install", "kk_cli_envmod:MyKernel", "--name", "kk-env",
               "--env", f"PYTHONPATH={kernels}", "--env", "KK_FLAG=a=b", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    spec = json.loads((data_dir / "kernels" / "kk-env" / "kernel.json").read_text())
    assert spec["env"] == {"PYTHONPATH": str(kernels), "KK_FLAG": "a=b"}
    assert "--path" not in spec["argv"]
    with managed("kk-env", cwd=tmp_path) as kc:
        assert stdout_of(kc, "hi").startswith("mymod:hi")


def test_install_env_of_a_bridge_kernel_and_bad_pairs(data_dir: Path) -> None:
    backend = Path(__file__).parent.parent / "examples" / "python" / "echo_backend.py"
    done = cli("install", "--name", "kk-env-bridge", "--env", "KK_X=1", "--",
               sys.executable, str(backend))
    assert done.returncode == 0, done.stderr
    spec = json.loads((data_dir / "kernels" / "kk-env-bridge" / "kernel.json").read_text())
    assert spec["env"] == {"KK_X": "1"}
    bad = cli("install", "echo", "--env", "NOVALUE")
    assert bad.returncode == 2
    assert "expected NAME=VALUE, not 'NOVALUE'" in bad.stderr


def test_install_module_on_sys_path_records_no_path(tmp_path: Path, data_dir: Path) -> None:
    # kk_testkernels comes from PYTHONPATH, not the current folder: nothing to record.
    done = cli("install", "kk_testkernels:CommandKernel", "--name", "kk-cmd", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    spec = json.loads((data_dir / "kernels" / "kk-cmd" / "kernel.json").read_text())
    assert "--path" not in spec["argv"]
    assert spec["argv"][3:5] == ["run", "kk_testkernels:CommandKernel"]
    assert spec["display_name"] == "commands"


def test_packaged_echo_kernelspec() -> None:
    """The wheel's shared-data puts kernelkit-echo under sys.prefix, and it starts."""
    found = jupyter_kernelspecs()["kernelkit-echo"]
    packaged = Path(sys.prefix) / "share" / "jupyter" / "kernels" / "kernelkit-echo"
    assert os.path.samefile(found["resource_dir"], packaged)
    assert found["spec"]["argv"][1:5] == ["-m", "kernelkit", "run", "echo"]
    assert "kernelkit-echo" in kernelkit_list()
    with managed("kernelkit-echo") as kc:
        assert_echo_kernel(kc)


def test_list_shows_builtin_kernels() -> None:
    done = cli("list")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == "built-in kernels (kernelkit run NAME):"
    builtins = lines[1 : lines.index("installed kernelkit kernelspecs:")]
    assert ["echo", "kernelkit.kernels.echo:EchoKernel"] in [line.split() for line in builtins]


def test_list_keeps_its_columns_aligned_for_long_names(data_dir: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A kernelspec name longer than the old fixed 20 characters shifted its row's columns."""
    monkeypatch.setenv("JUPYTER_PREFER_ENV_PATH", "0")
    long_name = "a-kernelspec-name-well-past-twenty-characters"
    for name in ("short", long_name):
        assert cli("install", "echo", "--name", name, "--user").returncode == 0
    done = cli("list")
    rows = [line for line in done.stdout.splitlines()
            if line.startswith(("  short ", f"  {long_name} "))]
    assert len(rows) == 2, done.stdout
    assert len({row.index(" echo ") for row in rows}) == 1, rows
    assert len({row.index(str(data_dir)) for row in rows}) == 1, rows
