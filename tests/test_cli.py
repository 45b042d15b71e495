"""The ``kernelkit`` command as users and Jupyter run it, each time in a child process.

Covers mistakes a user can fix (exit 2, one line on stderr), kernels that are found but
cannot start (exit 1, saying why), running a kernel with and without a connection file,
exiting when the launching process dies, the ipc transport, version and help, and the
subcommand table. Installing, listing and removing kernelspecs are in
test_cli_kernelspecs.py; the helpers both share are in tests/support/cli_support.py.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import signal
import socket
import stat
import subprocess
import sys
from contextlib import suppress
from pathlib import Path

import cli_support
import psutil
import pytest
from cli_support import (
    CHANNELS,
    IPYKERNEL_DERIVED,
    KERNELKIT,
    KERNELKIT_SCRIPT,
    NEEDS_MISSING_DEPENDENCY,
    RAISES_AT_IMPORT,
    Lines,
    assert_echo_kernel,
    assert_heartbeat,
    assert_usage_error,
    connected,
    gone,
    mode,
    run_must_fail,
    spawn,
    umask,
    wait_until,
)
from jupyter_client import find_connection_file
from jupyter_client.connect import write_connection_file

import kernelkit
from conftest import kernelkit as cli

# cli_support's fixtures (data_dir is autouse): pytest finds them among this module's names.
data_dir_fixture = cli_support.data_dir_fixture
conn_file_fixture = cli_support.conn_file_fixture

# -- mistakes the user can fix: exit 2, one line --------------------------------


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["run", "nosuch"], "unknown kernel 'nosuch'"),
        (["run", "bad:spec:"], "bad kernel 'bad:spec:'"),
        (["run", "nosuchmodule:K"], "no module named 'nosuchmodule'"),
        (["run", "kk_testkernels:Missing"], "has no 'Missing'"),
        (["run", "json:JSONDecoder"], "JSONDecoder is not a kernelkit.Kernel subclass"),
        (["install", "nosuch"], "unknown kernel 'nosuch'"),
        (["install", "nosuchmodule:K"], "no module named 'nosuchmodule'"),
        (["install", "echo", "--name", "no/slashes"], "bad kernelspec name 'no/slashes'"),
        (["remove", "nosuch"], "no kernelspec named 'nosuch'"),
    ],
)
def test_user_mistakes_exit_2_with_one_line(args: list[str], expected: str) -> None:
    line = assert_usage_error(cli(*args))
    assert expected in line


def test_install_into_unwritable_prefix(tmp_path: Path, data_dir: Path) -> None:
    # Tests run as root, who can write anywhere: a prefix below a regular file cannot be made.
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder\n")
    line = assert_usage_error(cli("install", "echo", "--prefix", str(blocker)))
    assert "cannot write kernelspec" in line
    assert str(blocker) in line
    assert not (data_dir / "kernels").exists()


def test_console_script_reports_mistakes_the_same_way() -> None:
    done = subprocess.run(
        [KERNELKIT_SCRIPT, "run", "nosuch"], capture_output=True, text=True, timeout=60
    )
    assert "unknown kernel 'nosuch'" in assert_usage_error(done)


# -- kernels that are found but cannot start: say why ----------------------------


def test_broken_init_names_class_and_cause(conn_file: Path) -> None:
    done = run_must_fail("run", "kk_testkernels:BrokenInitKernel", "-f", str(conn_file))
    assert done.returncode == 1, done.stderr
    assert done.stderr.startswith("Traceback"), "the traceback comes first, the summary last"
    assert 'raise RuntimeError("the database is not there")' in done.stderr
    last = done.stderr.splitlines()[-1]
    assert last == (
        "kernelkit: error: kernel class kk_testkernels.BrokenInitKernel could not be "
        "constructed: RuntimeError: the database is not there"
    )


def test_bad_hook_signature_names_the_hook(conn_file: Path) -> None:
    done = run_must_fail("run", "kk_testkernels:BadHookKernel", "-f", str(conn_file))
    assert done.returncode == 1, done.stderr
    assert done.stderr.startswith("kernelkit: error:")
    assert "kk_testkernels.BadHookKernel" in done.stderr
    assert "do_execute" in done.stderr


def test_init_without_super_is_reported(conn_file: Path) -> None:
    done = run_must_fail("run", "kk_testkernels:NoSuperKernel", "-f", str(conn_file))
    assert done.returncode == 1, done.stderr
    assert "kk_testkernels.NoSuperKernel" in done.stderr
    assert "super().__init__" in done.stderr


def test_module_raising_at_import(tmp_path: Path, conn_file: Path) -> None:
    (tmp_path / "kk_cli_raises.py").write_text(RAISES_AT_IMPORT)
    done = run_must_fail(
        "run", "kk_cli_raises:Anything", "--path", str(tmp_path), "-f", str(conn_file)
    )
    assert done.returncode == 1, done.stderr
    assert "the settings file is missing" in done.stderr
    assert "importing kk_cli_raises" in done.stderr


def test_missing_dependency_is_not_mistaken_for_a_missing_kernel(
    tmp_path: Path, conn_file: Path
) -> None:
    (tmp_path / "kk_cli_needs.py").write_text(NEEDS_MISSING_DEPENDENCY)
    done = run_must_fail(
        "run", "kk_cli_needs:Anything", "--path", str(tmp_path), "-f", str(conn_file)
    )
    assert done.returncode == 1, done.stderr
    assert "kk_cli_no_such_dependency" in done.stderr
    assert "importing kk_cli_needs" in done.stderr


def test_ipykernel_subclass_gets_the_import_hint(tmp_path: Path, conn_file: Path) -> None:
    (tmp_path / "kk_cli_ipyk.py").write_text(IPYKERNEL_DERIVED)
    done = run_must_fail(
        "run", "kk_cli_ipyk:OldStyleKernel", "--path", str(tmp_path), "-f", str(conn_file)
    )
    line = assert_usage_error(done)
    assert "OldStyleKernel is not a kernelkit.Kernel subclass" in line
    assert "from kernelkit import Kernel" in line
    assert "--ipykernel-compat" in line and "kernelkit adopt" in line


def test_connection_file_not_json(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("this is {not json\n")
    done = run_must_fail("run", "echo", "-f", str(bad))
    assert done.returncode == 1, done.stderr
    assert done.stderr.startswith("kernelkit: error:")
    assert f"connection file {bad} is not valid JSON" in done.stderr
    assert "Traceback" not in done.stderr


def test_connection_file_missing(tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    done = run_must_fail("run", "echo", "-f", str(missing))
    assert done.returncode == 1, done.stderr
    assert f"cannot read connection file {missing}" in done.stderr
    assert "Traceback" not in done.stderr


def test_port_already_taken(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        fname, _ = write_connection_file(
            str(tmp_path / "c.json"), ip="127.0.0.1", key=b"k", shell_port=port
        )
        done = run_must_fail("run", "echo", "-f", fname)
    assert done.returncode == 1, done.stderr
    assert "cannot listen on 127.0.0.1" in done.stderr
    assert "Traceback" not in done.stderr


# -- running a kernel --------------------------------------------------------------


def test_run_without_connection_file(tmp_path: Path) -> None:
    runtime = Path(os.environ["JUPYTER_RUNTIME_DIR"])
    with (
        open(tmp_path / "stderr.txt", "w") as err,
        spawn([*KERNELKIT, "run", "echo"], stdout=subprocess.PIPE, stderr=err) as proc,
    ):
        assert proc.stdout is not None
        lines = Lines(proc.stdout)
        hint = lines.wait_for(lambda line: "jupyter console --existing" in line)
        where = lines.wait_for(lambda line: "connection file:" in line)
        path = Path(where.split("connection file:", 1)[1].strip().removesuffix(")"))

        assert path.parent == runtime
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        # The name printed after --existing is one `jupyter console` resolves to this file.
        shown = hint.split("--existing", 1)[1].strip()
        assert Path(find_connection_file(shown)) == path

        info = json.loads(path.read_text())
        assert info["transport"] == "tcp"
        assert info["ip"] == "127.0.0.1"
        assert info["key"]
        ports = {info[f"{channel}_port"] for channel in CHANNELS}
        assert len(ports) == 5 and 0 not in ports
        listening = [
            c.laddr
            for c in psutil.Process(proc.pid).net_connections(kind="inet")
            if c.status == psutil.CONN_LISTEN
        ]
        assert {addr.ip for addr in listening} == {"127.0.0.1"}
        assert {addr.port for addr in listening} == ports

        assert_heartbeat(path)
        with connected(path) as kc:
            assert_echo_kernel(kc)
            kc.shutdown()
            assert proc.wait(timeout=20) == 0, (tmp_path / "stderr.txt").read_text()
        assert not path.exists()


# A launcher that tells its pid, waits for a line, then becomes the kernel (exec keeps the
# pid) under umask 000: a test can plant files at names derived from the kernel's pid.
WAIT_THEN_EXEC = (
    "import os, sys\n"
    "os.umask(0)\n"
    "print(os.getpid(), flush=True)\n"
    "sys.stdin.readline()\n"
    "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])\n"
)
UUID_NAME = r"kernel-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.json"


def test_own_connection_file_ignores_files_planted_at_predictable_names(
    tmp_path: Path,
) -> None:
    import re

    runtime = Path(os.environ["JUPYTER_RUNTIME_DIR"])
    runtime.mkdir(parents=True)
    victim = tmp_path / "victim.txt"
    victim.write_text("the victim's own file\n")
    with spawn([sys.executable, "-c", WAIT_THEN_EXEC, "-m", "kernelkit", "run", "echo"],
               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        assert proc.stdin is not None and proc.stdout is not None
        pid = int(proc.stdout.readline())
        # Names a kernel could have been expected to use: jupyter's and kernelkit's old one.
        planted = [runtime / f"kernel-{pid}.json", runtime / f"kernel-kernelkit-{pid}.json"]
        for link in planted:
            link.symlink_to(victim)
        proc.stdin.write("go\n")
        proc.stdin.flush()
        where = Lines(proc.stdout).wait_for(lambda line: "connection file:" in line)
        path = Path(where.split("connection file:", 1)[1].strip().removesuffix(")"))
        assert re.fullmatch(UUID_NAME, path.name), path.name
        assert path.parent == runtime and path.is_file() and not path.is_symlink()
        assert mode(path) == 0o600  # under umask 000
        assert victim.read_text() == "the victim's own file\n"
        assert all(link.is_symlink() for link in planted)
        with connected(path) as kc:
            assert_echo_kernel(kc)
            kc.shutdown()
        assert proc.wait(timeout=20) == 0
        assert not path.exists()
    assert victim.read_text() == "the victim's own file\n"


def test_runtime_folder_it_creates_is_private_under_umask_000(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = tmp_path / "fresh" / "deeper" / "runtime"
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(runtime))
    with (
        umask(0),
        spawn([*KERNELKIT, "run", "echo"], stdout=subprocess.PIPE,
              stderr=subprocess.PIPE) as proc,
    ):
        assert proc.stdout is not None
        where = Lines(proc.stdout).wait_for(lambda line: "connection file:" in line)
        path = Path(where.split("connection file:", 1)[1].strip().removesuffix(")"))
        assert path.parent == runtime
        for folder in (tmp_path / "fresh", tmp_path / "fresh" / "deeper", runtime):
            assert mode(folder) == 0o700, (folder, oct(mode(folder)))
        assert mode(path) == 0o600
        with connected(path) as kc:
            kc.shutdown()
        assert proc.wait(timeout=20) == 0
        assert proc.stderr is not None
        assert "can be written by other users" not in proc.stderr.read()


def test_shared_runtime_folder_is_warned_about(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime = tmp_path / "shared"
    runtime.mkdir()
    runtime.chmod(0o777)  # writable by all, no sticky bit
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(runtime))
    with spawn([*KERNELKIT, "run", "echo"], stdout=subprocess.PIPE,
               stderr=subprocess.PIPE) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        where = Lines(proc.stdout).wait_for(lambda line: "connection file:" in line)
        path = Path(where.split("connection file:", 1)[1].strip().removesuffix(")"))
        warning = Lines(proc.stderr).wait_for(lambda line: "kernelkit: warning:" in line)
        assert str(runtime) in warning and "can be written by other users" in warning
        assert "0777" in warning
        with connected(path) as kc:
            kc.shutdown()
        assert proc.wait(timeout=20) == 0


def test_write_new_skips_a_name_that_is_taken(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import kernelkit.wire
    from kernelkit.connection import ConnectionInfo

    victim = tmp_path / "victim.txt"
    victim.write_text("keep me\n")
    (tmp_path / "kernel-taken.json").symlink_to(victim)
    (tmp_path / "kernel-also-taken.json").write_text("{}")
    names = iter(["taken", "also-taken", "fresh"])
    monkeypatch.setattr(kernelkit.wire, "new_id", lambda: next(names))
    with umask(0):
        path = ConnectionInfo(key="k").write_new(tmp_path)
    assert path == tmp_path / "kernel-fresh.json"
    assert json.loads(path.read_text())["key"] == "k" and mode(path) == 0o600
    assert victim.read_text() == "keep me\n"
    assert (tmp_path / "kernel-also-taken.json").read_text() == "{}"


def test_write_new_gives_up_clearly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import kernelkit.wire
    from kernelkit.connection import ConnectionInfo

    (tmp_path / "kernel-same.json").write_text("{}")
    monkeypatch.setattr(kernelkit.wire, "new_id", lambda: "same")
    with pytest.raises(FileExistsError, match="new random names was already taken"):
        ConnectionInfo(key="k").write_new(tmp_path)


def test_rewriting_a_connection_file_replaces_a_symlink_instead_of_following_it(
    tmp_path: Path,
) -> None:
    from kernelkit.connection import ConnectionInfo

    victim = tmp_path / "victim.txt"
    victim.write_text("keep me\n")
    link = tmp_path / "connection.json"
    link.symlink_to(victim)
    with umask(0):
        ConnectionInfo(key="k", shell_port=5).write(link)
    assert victim.read_text() == "keep me\n"
    assert not link.is_symlink() and mode(link) == 0o600
    assert json.loads(link.read_text())["shell_port"] == 5
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")] == []


def test_sigterm_removes_own_connection_file(tmp_path: Path) -> None:
    with spawn([*KERNELKIT, "run", "echo"], stdout=subprocess.PIPE, stderr=subprocess.PIPE) as proc:
        assert proc.stdout is not None
        where = Lines(proc.stdout).wait_for(lambda line: "connection file:" in line)
        path = Path(where.split("connection file:", 1)[1].strip().removesuffix(")"))
        assert path.is_file()
        with connected(path) as kc:
            assert_echo_kernel(kc)
        proc.terminate()
        assert proc.wait(timeout=20) == 0
        assert not path.exists()


def test_ipc_transport(tmp_path: Path) -> None:
    ip = str(tmp_path / "kk-ipc")
    fname, _ = write_connection_file(
        str(tmp_path / "ipc.json"), transport="ipc", ip=ip, key=b"ipc-key"
    )
    info = json.loads(Path(fname).read_text())
    sockets = [Path(f"{ip}-{info[f'{channel}_port']}") for channel in CHANNELS]
    with (
        open(tmp_path / "stderr.txt", "w") as err,
        spawn([*KERNELKIT, "run", "echo", "-f", fname], stdout=err, stderr=err) as proc,
    ):
        assert_heartbeat(fname)
        with connected(fname) as kc:
            assert_echo_kernel(kc)
            assert all(s.is_socket() for s in sockets), sockets
            listening = [
                c
                for c in psutil.Process(proc.pid).net_connections(kind="inet")
                if c.status == psutil.CONN_LISTEN
            ]
            assert listening == []
            kc.shutdown()
        assert proc.wait(timeout=20) == 0, (tmp_path / "stderr.txt").read_text()


def test_zero_ports_in_connection_file_are_not_silently_lost(tmp_path: Path) -> None:
    fname, _ = write_connection_file(str(tmp_path / "zero.json"), ip="127.0.0.1", key=b"z")
    info = json.loads(Path(fname).read_text())
    for channel in CHANNELS:
        info[f"{channel}_port"] = 0
    Path(fname).write_text(json.dumps(info))

    def told() -> bool:
        ports = [json.loads(Path(fname).read_text())[f"{c}_port"] for c in CHANNELS]
        return all(ports) or proc.poll() is not None

    with (
        open(tmp_path / "stderr.txt", "w") as err,
        spawn([*KERNELKIT, "run", "echo", "-f", fname], stdout=err, stderr=err) as proc,
    ):
        # Either the real ports reach the file, or the kernel refuses to start.
        assert wait_until(told, timeout=5)
        if proc.poll() is None:
            with connected(fname) as kc:
                assert_echo_kernel(kc)
        else:
            assert proc.returncode != 0


PARENT = """
import os, subprocess, sys

connection_file, log, how = sys.argv[1:]
cmd = [sys.executable, "-m", "kernelkit", "run", "echo", "-f", connection_file]
if how == "wrapped":  # a launcher script between Jupyter and the kernel
    cmd = [sys.executable, "-c", "import subprocess, sys; subprocess.call(sys.argv[1:])", *cmd]
env = dict(os.environ, JPY_PARENT_PID=str(os.getpid()))
with open(log, "w") as err:
    child = subprocess.Popen(cmd, env=env, stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=err)
print(child.pid, flush=True)
child.wait()
"""


@pytest.mark.parametrize("how", ["direct", "direct-unreaped", "wrapped"])
def test_kernel_exits_when_parent_dies(tmp_path: Path, conn_file: Path, how: str) -> None:
    log = tmp_path / "kernel-stderr.txt"
    child: psutil.Process | None = None  # the kernel, or the wrapper that runs it
    try:
        with spawn(
            [sys.executable, "-c", PARENT, str(conn_file), str(log), how],
            stdout=subprocess.PIPE,
        ) as parent:
            assert parent.stdout is not None
            child = psutil.Process(
                int(Lines(parent.stdout).wait_for(lambda line: line.strip().isdigit()).strip())
            )
            with connected(conn_file) as kc:
                assert_echo_kernel(kc)
            kernels = [
                p for p in [child, *child.children()] if p.cmdline()[1:3] == ["-m", "kernelkit"]
            ]
            assert len(kernels) == 1, kernels
            kernel = kernels[0]
            assert kernel.environ()["JPY_PARENT_PID"] == str(parent.pid)
            assert not gone(kernel)

            parent.send_signal(signal.SIGKILL)
            if how != "direct-unreaped":
                parent.wait(timeout=10)
            exited = wait_until(lambda: gone(kernel), timeout=5)
            assert exited, f"kernel still running 5s after its parent died:\n{log.read_text()}"
            assert "parent process is gone" in log.read_text()
    finally:
        if child is not None:
            with suppress(psutil.NoSuchProcess):
                for proc in [*child.children(recursive=True), child]:
                    with suppress(psutil.NoSuchProcess):
                        proc.kill()


# -- version and help ------------------------------------------------------------------


def test_version() -> None:
    done = cli("--version")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"kernelkit {kernelkit.__version__}"
    assert kernelkit.__version__ == importlib.metadata.version("kernelkit")


def test_help_from_console_script() -> None:
    done = subprocess.run([KERNELKIT_SCRIPT, "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: kernelkit")
    listed = {line.split()[0] for line in done.stdout.splitlines() if line.startswith("    ")}
    assert {"run", "install", "list", "remove"} <= listed
    run_help = subprocess.run(
        [KERNELKIT_SCRIPT, "run", "--help"], capture_output=True, text=True, timeout=60
    )
    assert run_help.returncode == 0, run_help.stderr
    assert "--connection-file" in run_help.stdout


def test_no_command_is_a_usage_error() -> None:
    done = cli()
    assert done.returncode == 2
    assert "usage: kernelkit" in done.stderr


def test_the_bridge_fast_path_has_the_bridge_default_init_timeout() -> None:
    # bridge/command.py repeats it so that `kernelkit bridge` need not import bridge/kernel.py
    # first.
    from kernelkit.bridge import command as bridge_command
    from kernelkit.bridge import kernel

    assert bridge_command.INIT_TIMEOUT == kernel.INIT_TIMEOUT
    assert bridge_command.fast_argv(["bridge", "-f", "c.json", "--", "deno", "run", "x.ts"]) == (
        "c.json", ["deno", "run", "x.ts"])
    assert bridge_command.fast_argv(
        ["bridge", "-f", "c.json", "--init-timeout", "1", "--", "x"]) is None


def test_every_subcommand_has_an_entry_in_the_table_and_each_entry_resolves() -> None:
    """cli.SUBCOMMANDS is the one place a subcommand is routed: the parser's subcommands and
    the table's keys are the same, and each "module:function" names a function."""
    import argparse
    import importlib

    from kernelkit import cli

    parser = cli._parser()
    subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    assert set(subparsers.choices) == set(cli.SUBCOMMANDS)
    for name, target in cli.SUBCOMMANDS.items():
        module, _, function = target.partition(":")
        assert callable(getattr(importlib.import_module(module), function)), name
