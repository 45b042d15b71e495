"""Attacks on files and on request contents (see tests/attacks.py for how they are run).

Item 14: what a kernel started without ``-f`` does when another process has planted a
symlink or a connection file of its own at the name the kernel will use, and what
permissions the files and folders it creates get under ``umask 000``.
Item 17: an empty key, an unusable ``signature_scheme``, and requests whose fields have
the wrong type or are out of range, sent to both kernels.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import stat
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import zmq
from raw import CHANNELS, SUPPORT, Client, connection_info, free_ports, stdout_text

from attacks import Outcome, attack, context, start

# A launcher that says its pid, waits for a line on stdin, then becomes the kernel: exec
# keeps the pid, so the attacker knows the names derived from it before the kernel starts.
WAIT_THEN_EXEC = (
    "import os, sys\n"
    "os.umask(int(os.environ.pop('KK_ATTACK_UMASK', '0o022'), 8))\n"
    "print(os.getpid(), flush=True)\n"
    "sys.stdin.readline()\n"
    "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])\n"
)


def own_file_argv(target: str) -> list[str]:
    """Arguments after ``python`` that start ``target`` without a connection file."""
    if target == "ipykernel":
        return ["-m", "ipykernel_launcher"]
    return ["-m", "kernelkit", "run", "kk_testkernels:PythonKernel"]


def predictable_names(runtime: Path, pid: int) -> list[Path]:
    """Where a kernel of this pid might write: ipykernel's name, and kernelkit's old one."""
    return [runtime / f"kernel-{pid}.json", runtime / f"kernel-kernelkit-{pid}.json"]


class Launch:
    """A kernel started without ``-f`` in ``runtime``, after the attacker had its pid."""

    def __init__(self, target: str, workdir: Path, runtime: Path, umask: int = 0o022) -> None:
        self.target = target
        self.runtime = runtime
        self.stderr_path = workdir / f"{target}-stderr.txt"
        pythonpath = os.pathsep.join(p for p in (str(SUPPORT), os.environ.get("PYTHONPATH")) if p)
        env = {**os.environ, "PYTHONPATH": pythonpath, "JUPYTER_RUNTIME_DIR": str(runtime),
               "KK_ATTACK_UMASK": oct(umask)}
        env.pop("JPY_PARENT_PID", None)
        with open(self.stderr_path, "wb") as err:
            # The kernel's stdout (a few lines saying how to connect) goes to the same file.
            self.proc = subprocess.Popen(
                [sys.executable, "-c", WAIT_THEN_EXEC, *own_file_argv(target)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err, env=env,
            )
        assert self.proc.stdout is not None
        self.pid = int(self.proc.stdout.readline())

    def go(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"go\n")
        self.proc.stdin.close()

    def connection_file(self, timeout: float = 30) -> Path | None:
        """The connection file the kernel wrote, once it is complete (None: it never did)."""
        planted = predictable_names(self.runtime, self.pid)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return None
            for path in sorted(self.runtime.glob("kernel-*.json")):
                if self.target == "ipykernel":
                    if path != planted[0]:
                        continue
                elif path in planted:
                    continue
                with contextlib.suppress(OSError, ValueError):
                    info = json.loads(path.read_text())
                    if not path.is_symlink() and all(info.get(f"{c}_port") for c in CHANNELS):
                        return path
            time.sleep(0.05)
        return None

    def stderr(self) -> str:
        return self.stderr_path.read_text(errors="replace")

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.proc.wait(10)
        if self.proc.stdout is not None:
            self.proc.stdout.close()


@contextlib.contextmanager
def launched(target: str, umask: int = 0o022,
             runtime_parts: tuple[str, ...] = ("runtime",)) -> Iterator[tuple[Launch, Path]]:
    with tempfile.TemporaryDirectory(prefix="kk-attack-files-") as tmp:
        workdir = Path(tmp)
        launch = Launch(target, workdir, workdir.joinpath(*runtime_parts), umask)
        try:
            yield launch, workdir
        finally:
            launch.kill()


def kernel_answers(info: dict[str, Any], key: str, timeout: float) -> bool:
    """Whether a kernel_info_request signed with ``key`` gets an answer on info's shell port."""
    from kernelkit.wire import Session

    session = Session(key.encode())
    with context() as ctx:
        sock = ctx.socket(zmq.DEALER)
        sock.linger = 0
        sock.connect(f"tcp://127.0.0.1:{info['shell_port']}")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            sock.send_multipart(session.serialize("kernel_info_request", {}))
            if sock.poll(1000):
                with contextlib.suppress(Exception):
                    session.deserialize(sock.recv_multipart())
                    return True
        return False


def run_as(info: dict[str, Any], key: str, code: str, timeout: float) -> bool:
    """Send an execute_request signed with ``key``; whether any reply came."""
    from kernelkit.wire import Session

    session = Session(key.encode())
    with context() as ctx:
        sock = ctx.socket(zmq.DEALER)
        sock.linger = 0
        sock.connect(f"tcp://127.0.0.1:{info['shell_port']}")
        sock.send_multipart(session.serialize(
            "execute_request", {"code": code, "silent": False, "store_history": True,
                                "user_expressions": {}, "allow_stdin": False}))
        return bool(sock.poll(int(timeout * 1000)))


# -- item 14: files ----------------------------------------------------------------------------


@attack(14, "symlink planted where a kernel started without -f writes its connection file")
def planted_symlink(target: str, quick: bool) -> Outcome:
    with launched(target, umask=0) as (launch, workdir):
        runtime = launch.runtime
        runtime.mkdir(mode=0o700)
        victim = workdir / "victim-bashrc"  # any file of the victim's, say ~/.bashrc
        original = "# the victim's own file\nexport PATH=$HOME/bin:$PATH\n"
        victim.write_text(original)
        for link in predictable_names(runtime, launch.pid):
            link.symlink_to(victim)
        launch.go()
        path = launch.connection_file(timeout=30)
        intact = victim.read_text() == original
        started = path is not None
        details: dict[str, Any] = {"pid": launch.pid}
        parts = ["victim file intact" if intact else "**victim file overwritten**"]
        if started:
            assert path is not None
            info = json.loads(path.read_text())
            answers = kernel_answers(info, info["key"], 20)
            mode = stat.S_IMODE(path.lstat().st_mode)
            parts.append(f"kernel started, wrote {path.name if target == 'kernelkit' else 'it'}"
                         f" ({mode:04o}) and answers" if answers else "kernel does not answer")
            ok = answers and mode == 0o600
        else:
            last = launch.stderr().strip().splitlines()[-1:] or ["(nothing on stderr)"]
            parts.append(f"kernel did not start (exit {launch.proc.poll()}): {last[0][:90]}")
            ok = False
        return Outcome("; ".join(parts), intact and started and ok, details)


@attack(14, "connection file with the attacker's key and ports planted at that name")
def planted_connection_file(target: str, quick: bool) -> Outcome:
    with launched(target) as (launch, workdir):
        runtime = launch.runtime
        runtime.mkdir(mode=0o700)
        marker = workdir / "attacker-was-here"
        ports = free_ports(5)
        planted = connection_info("the-attackers-key", ports)
        for name in predictable_names(runtime, launch.pid):
            name.write_text(json.dumps(planted))
        launch.go()
        path = launch.connection_file(timeout=30)
        if path is None:
            return Outcome(f"kernel did not start (exit {launch.proc.poll()})", False)
        real = json.loads(path.read_text())
        adopted = real["key"] == planted["key"]
        # The attacker tries its own key on its own ports, then on the kernel's real ones.
        code = f"open({str(marker)!r}, 'w').write('pwned')"
        run_as(planted, planted["key"], code, 10 if adopted else 1)
        run_as(real, planted["key"], code, 1)
        time.sleep(0.3)
        ran = marker.exists()
        genuine = kernel_answers(real, real["key"], 20)
        if ran:
            figure = "**adopted the planted file: the attacker's key ran its code**"
        elif adopted:
            figure = "adopted the planted key (the attacker's code did not run)"
        else:
            figure = "planted files ignored: own random name and key; attacker's code refused"
        return Outcome(figure, not ran and not adopted and genuine,
                       {"adopted_key": adopted, "ran": ran, "genuine_client_works": genuine})


def _modes(root: Path, paths: list[Path]) -> dict[str, str]:
    return {str(p.relative_to(root)): f"{stat.S_IMODE(p.lstat().st_mode):04o}" for p in paths}


@attack(14, "files and folders a kernel creates under umask 000")
def umask_000(target: str, quick: bool) -> Outcome:
    with tempfile.TemporaryDirectory(prefix="kk-attack-umask-") as tmp:
        root = Path(tmp)
        prefix = root / "prefix"
        # The kernelspec an install writes.
        if target == "ipykernel":
            install = [sys.executable, "-m", "ipykernel", "install", "--prefix", str(prefix),
                       "--name", "attack-umask"]
        else:
            install = [sys.executable, "-m", "kernelkit", "install", "echo", "--prefix",
                       str(prefix), "--name", "attack-umask"]
        old = os.umask(0)
        try:
            done = subprocess.run(install, capture_output=True, text=True, timeout=120)
        finally:
            os.umask(old)
        if done.returncode != 0:
            return Outcome(f"install failed: {done.stderr.strip()[-200:]}", False)
        modes = _modes(root, [prefix, *sorted(prefix.rglob("*"))])
    # The runtime folder (and its parents) a kernel started without -f creates.
    with launched(target, umask=0, runtime_parts=("new", "runtime")) as (launch, workdir):
        launch.go()
        path = launch.connection_file(timeout=30)
        if path is None:
            return Outcome(f"kernel did not start: {launch.stderr()[-200:]}", False)
        modes.update(_modes(workdir, [workdir / "new", launch.runtime, path]))
        modes["connection file"] = modes.pop(str(path.relative_to(workdir)))
    writable = {k: v for k, v in modes.items() if int(v, 8) & 0o022}
    runtime_ok = modes["new/runtime"] == "0700" and modes["connection file"] == "0600"
    spec = "prefix/share/jupyter/kernels/attack-umask"
    names = {f"{spec}/kernel.json": "kernel.json", spec: "kernelspec folder",
             "prefix/share": "share/", "new": "runtime's new parent",
             "new/runtime": "runtime folder", "connection file": "connection file"}
    figure = ", ".join(f"{names[k]} {v}" for k, v in modes.items() if k in names)
    if writable:
        figure += f"; **writable by others: {len(writable)} of {len(modes)}**"
    else:
        figure += "; nothing writable by others"
    return Outcome(figure, not writable and runtime_ok, {"modes": modes})


# -- item 17: keys, schemes and request contents -----------------------------------------------


@attack(17, "empty key (messages unsigned)")
def empty_key(target: str, quick: bool) -> Outcome:
    with start(target, key="") as k:
        ctx = zmq.Context()
        try:
            client = Client(ctx, k)
            client.wait_ready(30)
            ran = client.reply(client.execute("x = 1"), timeout=30).content["status"] == "ok"
            client.close()
        finally:
            ctx.destroy(linger=0)
        text = k.stderr()
    lines = [ln for ln in text.splitlines() if "sign" in ln.lower()]
    warned = bool(lines)
    said = lines[0].split("] ", 1)[-1].strip() if lines else ""
    said = re.sub(r"connection file \S+ has", "connection file has", said)[:120]
    figure = (f"starts{' and runs code' if ran else ''}; warns: \"{said}\"" if warned
              else f"starts{' and runs code' if ran else ''}; **no warning**")
    return Outcome(figure, ran and warned)


@attack(17, "signature_scheme hmac-shake_128 (unusable for HMAC)")
def shake_scheme(target: str, quick: bool) -> Outcome:
    from attacks import kernel_args

    module, args = kernel_args(target)
    with tempfile.TemporaryDirectory(prefix="kk-attack-scheme-") as tmp:
        cf = Path(tmp) / "connection.json"
        ports = free_ports(5)
        cf.write_text(json.dumps({**connection_info("k", ports),
                                  "signature_scheme": "hmac-shake_128"}))
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            p for p in (str(SUPPORT), os.environ.get("PYTHONPATH")) if p)}
        argv = [sys.executable, "-m", module, *(a.replace("{cf}", str(cf)) for a in args)]
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True, env=env)
        try:
            _, err = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
            return Outcome("**kept running with a scheme it cannot sign with**", False)
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    last = lines[-1].strip() if lines else "(nothing on stderr)"
    named = "shake_128" in last and "hmac-sha256" in last and "no reason supplied" not in err
    reason = last.split("error: ", 1)[-1]
    figure = f"exit {proc.returncode}: \"{reason[:150]}{'...' if len(reason) > 150 else ''}\""
    if "Traceback" in err:
        figure += " (after a traceback)"
    return Outcome(figure, proc.returncode != 0 and named and "Traceback" not in err)


# Requests with a field of the wrong type or out of range: (label, msg_type, content).
BAD_REQUESTS: list[tuple[str, str, dict[str, Any]]] = [
    ("cursor_pos -5", "complete_request", {"code": "pri", "cursor_pos": -5}),
    ("cursor_pos 10**400", "complete_request", {"code": "pri", "cursor_pos": 10**400}),
    ("inspect cursor_pos 99", "inspect_request", {"code": "x", "cursor_pos": 99,
                                                   "detail_level": 0}),
    ("detail_level 7", "inspect_request", {"code": "x", "cursor_pos": 1, "detail_level": 7}),
    ('silent "false"', "execute_request", {"silent": "false"}),
    ('store_history "no"', "execute_request", {"store_history": "no"}),
    ("user_expressions {a: 1}", "execute_request", {"user_expressions": {"a": 1}}),
]


def _one_bad_request(client: Client, n: int, msg_type: str, content: dict[str, Any],
                     wait: float) -> tuple[str, bool, bool]:
    """(how the reply looked, whether the code ran, whether the execution count moved)."""
    assert client.iopub is not None
    log_before = len(client.kernel.stderr())

    def count() -> int:
        reply = client.reply(client.execute("pass"), timeout=30)
        return int(reply.content["execution_count"])

    before = count()
    if msg_type == "execute_request":
        body = {"code": f"print('RAN-{n}')\nran_{n} = True", "store_history": True,
                "user_expressions": {}, "allow_stdin": False, "silent": False, **content}
    else:
        body = content
    msg_id = client.send("shell", msg_type, body)
    try:
        reply = client.reply(msg_id, timeout=wait).content
    except TimeoutError:
        raised = [ln for ln in client.kernel.stderr()[log_before:].splitlines()
                  if ln and not ln.startswith(" ") and "Error" in ln.split(":", 1)[0]]
        why = f" ({raised[-1].split(':', 1)[0]} in its handler)" if raised else ""
        return f"**no reply** in {wait:.0f} s{why}", False, False
    published = [m.msg_type for m in client.iopub.wait_idle(msg_id, 30)]
    after = count()
    moved = after - before != 1  # the count executes move it by one, the bad one must not
    ran = False
    if msg_type == "execute_request":
        check = client.execute(f"print(globals().get('ran_{n}', False))")
        client.reply(check, timeout=30)
        ran = "True" in stdout_text(client.iopub.wait_idle(check, 30))
    if reply.get("status") == "error":
        shown = f"error {reply.get('ename')}"
    else:
        shown = str(reply.get("status"))
        if msg_type == "complete_request":
            shown += f" (cursor_start {str(reply.get('cursor_start'))[:12]})"
        if ran and "execute_input" not in published:
            shown += ", taken as silent"
    return shown, ran, moved


@attack(17, "requests with wrong types or out-of-range values (cursor_pos -5, 10**400, "
            "silent \"false\", ...)")
def bad_request_contents(target: str, quick: bool) -> Outcome:
    results = {}
    held = True
    with start(target) as k, context() as ctx:
        client = Client(ctx, k)
        try:
            client.wait_ready(30)
            for n, (label, msg_type, content) in enumerate(BAD_REQUESTS):
                shown, ran, moved = _one_bad_request(client, n, msg_type, content,
                                                     5 if quick else 30)
                notes = ([shown] + (["**code ran**"] if ran else [])
                         + (["count moved"] if moved else []))
                results[label] = ", ".join(notes)
                held = held and shown.startswith("error") and not ran and not moved
            alive = k.alive()
        finally:
            client.close()
    figure = "; ".join(f"{label}: {what}" for label, what in results.items())
    return Outcome(figure, held and alive, {"results": results})
