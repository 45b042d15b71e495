"""The ``kernelkit`` command as users and Jupyter run it, each time in a child process.

(Why ~990 lines: one user-facing surface, tested end to end; its groups — arguments,
running, files and modes, kernelspecs — are marked below, and are the seams for the
Layout issue's split.)

Covers mistakes a user can fix (exit 2, one line on stderr), kernels that are found but
cannot start (exit 1, saying why), running a kernel with and without a connection file,
installing, listing and removing kernelspecs, the packaged Echo kernelspec, exiting when
the launching process dies, and the ipc transport.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import queue
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import IO, Any

import psutil
import pytest
import zmq
from jupyter_client import BlockingKernelClient, KernelManager, find_connection_file
from jupyter_client.connect import write_connection_file

import kernelkit
from conftest import kernelkit as cli
from conftest import stdout_of

BIN = Path(sys.executable).parent
JUPYTER = str(BIN / "jupyter")
KERNELKIT_SCRIPT = str(BIN / "kernelkit")
CHANNELS = ("shell", "iopub", "stdin", "control", "hb")
KERNELKIT = [sys.executable, "-m", "kernelkit"]

# Kernel modules written into a temporary folder and reached with ``--path``.
RAISES_AT_IMPORT = """
raise RuntimeError("the settings file is missing")
"""
NEEDS_MISSING_DEPENDENCY = """
import kk_cli_no_such_dependency  # noqa: F401
"""
IPYKERNEL_DERIVED = """
from ipykernel.kernelbase import Kernel


class OldStyleKernel(Kernel):
    implementation = "old"
"""
MYMOD = """
import os

from kernelkit import Kernel


class MyKernel(Kernel):
    implementation = "MyImpl"
    language = "mylang"

    def do_execute(self, code, silent, store_history=True, user_expressions=None,
                   allow_stdin=False):
        if not silent:
            text = f"mymod:{code} cwd={os.getcwd()}"
            self.send_response(self.iopub_socket, "stream", {"name": "stdout", "text": text})
        return {"status": "ok", "execution_count": self.execution_count, "payload": [],
                "user_expressions": {}}
"""


# -- helpers -------------------------------------------------------------------


@pytest.fixture(autouse=True)
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A Jupyter data dir and runtime dir of this test's own (children inherit them)."""
    data = tmp_path / "jupyter-data"
    monkeypatch.setenv("JUPYTER_DATA_DIR", str(data))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(tmp_path / "jupyter-runtime"))
    return data


@pytest.fixture
def conn_file(tmp_path: Path) -> Path:
    fname, _ = write_connection_file(
        str(tmp_path / "connection.json"), ip="127.0.0.1", key=b"kernelkit-test-key"
    )
    return Path(fname)


def assert_usage_error(done: subprocess.CompletedProcess[str]) -> str:
    """Exit 2 with exactly one ``kernelkit: error:`` line on stderr; returns that line."""
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("kernelkit: error:"), done.stderr
    assert "Traceback" not in done.stderr
    assert done.stdout == ""
    return lines[0]


def run_must_fail(
    *args: str, timeout: float = 30, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -m kernelkit ARGS``, which must exit; a kernel that starts fails the test."""
    with subprocess.Popen(
        [*KERNELKIT, *args],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, err = proc.communicate()
            pytest.fail(f"kernelkit {' '.join(args)} started instead of failing: {out}\n{err}")
        finally:
            if proc.poll() is None:
                proc.kill()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


@contextmanager
def spawn(args: list[str], **kwargs: Any) -> Iterator[subprocess.Popen[str]]:
    """Start a process that is killed (and reaped) however the test ends."""
    kwargs.setdefault("stdin", subprocess.DEVNULL)
    with subprocess.Popen(args, text=True, **kwargs) as proc:
        try:
            yield proc
        finally:
            if proc.poll() is None:
                proc.kill()


class Lines:
    """A pipe read line by line on a thread, so the test can wait with a deadline."""

    def __init__(self, pipe: IO[str]) -> None:
        self.seen: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._pump, args=(pipe,), daemon=True).start()

    def _pump(self, pipe: IO[str]) -> None:
        with suppress(ValueError, OSError):  # closed under us when the test ends
            for line in pipe:
                self._queue.put(line)
        self._queue.put(None)

    def wait_for(self, predicate: Callable[[str], bool], timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"no such line within {timeout}s; saw {self.seen!r}")
            try:
                line = self._queue.get(timeout=remaining)
            except queue.Empty:
                continue
            if line is None:
                raise AssertionError(f"output ended without such a line; saw {self.seen!r}")
            self.seen.append(line)
            if predicate(line):
                return line


@contextmanager
def connected(connection_file: str | Path) -> Iterator[BlockingKernelClient]:
    """A client of a kernel we started ourselves, once kernel_info is answered.

    Without the heartbeat channel: jupyter_client's 1 s heartbeat deadline makes a
    standalone client think a kernel on a loaded machine died (assert_heartbeat checks it).
    """
    kc = BlockingKernelClient()
    kc.load_connection_file(str(connection_file))
    kc.start_channels(hb=False)
    try:
        kc.wait_for_ready(timeout=30)
        yield kc
    finally:
        kc.stop_channels()


@contextmanager
def managed(kernel_name: str, cwd: Path | None = None) -> Iterator[BlockingKernelClient]:
    """Start a kernelspec the way Jupyter does (KernelManager) and hand back its client."""
    km = KernelManager(kernel_name=kernel_name)
    km.start_kernel(cwd=str(cwd) if cwd else None)
    try:
        kc = km.client()
        kc.start_channels()
        try:
            kc.wait_for_ready(timeout=30)
            yield kc
        finally:
            kc.stop_channels()
    finally:
        km.shutdown_kernel(now=True)


def assert_heartbeat(connection_file: str | Path) -> None:
    """The heartbeat channel echoes what it is sent."""
    info = json.loads(Path(connection_file).read_text())
    if info["transport"] == "ipc":
        url = f"ipc://{info['ip']}-{info['hb_port']}"
    else:
        url = f"tcp://{info['ip']}:{info['hb_port']}"
    ctx = zmq.Context()
    try:
        sock = ctx.socket(zmq.REQ)
        sock.linger = 0
        sock.connect(url)
        sock.send(b"kernelkit-ping")
        assert sock.poll(20_000), "no heartbeat reply within 20s"
        assert sock.recv() == b"kernelkit-ping"
    finally:
        ctx.destroy(linger=0)


def assert_echo_kernel(kc: BlockingKernelClient) -> None:
    info = kc.kernel_info(reply=True, timeout=20)
    assert info["content"]["status"] == "ok"
    assert info["content"]["implementation"] == "Echo"
    assert stdout_of(kc, "hello kernelkit") == "hello kernelkit"


def jupyter_kernelspecs() -> dict[str, Any]:
    """What ``jupyter kernelspec list`` finds, by name."""
    done = subprocess.run(
        [JUPYTER, "kernelspec", "list", "--json"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    specs: dict[str, Any] = json.loads(done.stdout)["kernelspecs"]
    return specs


def kernelkit_list() -> dict[str, list[str]]:
    """The installed-kernelspec rows of ``kernelkit list``: name -> [kernel, path]."""
    done = cli("list")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    start = lines.index("installed kernelkit kernelspecs:")
    rows = {}
    for line in lines[start + 1 :]:
        name, *rest = line.split()
        rows[name] = rest
    return rows


def gone(proc: psutil.Process) -> bool:
    """Exited (a zombie nobody reaped yet counts as exited)."""
    try:
        return proc.status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


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


@contextmanager
def umask(mask: int) -> Iterator[None]:
    old = os.umask(mask)
    try:
        yield
    finally:
        os.umask(old)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.lstat().st_mode)


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
