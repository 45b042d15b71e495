"""Kernels the tests drive: each line of code is a command that exercises one behaviour."""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from kernelkit import Kernel


class CommandKernel(Kernel):
    """Runs small commands: loop, sleep N, raise, input P, getpass P, print X, modules, ..."""

    implementation = "commands"
    implementation_version = "0.1"
    language = "commands"
    language_info = {"name": "commands", "mimetype": "text/plain", "file_extension": ".txt"}
    banner = "test kernel"

    def out(self, text: str) -> None:
        self.send_response(self.iopub_socket, "stream", {"name": "stdout", "text": text})

    def do_execute(
        self,
        code: str,
        silent: bool,
        store_history: bool = True,
        user_expressions: dict[str, Any] | None = None,
        allow_stdin: bool = False,
    ) -> Any:
        cmd, _, arg = code.strip().partition(" ")
        if cmd == "loop":
            self.out("started\n")
            n = 0
            while True:
                n += 1
        elif cmd == "sleep":
            self.out("started\n")
            time.sleep(float(arg))
        elif cmd == "raise":
            raise ValueError(arg or "boom")
        elif cmd == "sleep-raise":
            time.sleep(float(arg))
            raise RuntimeError("failed after sleeping")
        elif cmd == "input":
            self.out("got:" + self.raw_input(arg))
        elif cmd == "getpass":
            self.out("secret:" + self.getpass(arg))
        elif cmd == "print":
            print(arg)
            print("to stderr", file=sys.stderr)
        elif cmd == "modules":
            self.out(json.dumps(sorted(sys.modules)))
        elif cmd == "none":
            return None
        elif cmd == "count":
            self.out(str(self.execution_count))
        elif cmd == "display":
            self.send_response(
                self.iopub_socket,
                "display_data",
                {"data": {"text/plain": arg}, "metadata": {}},
            )
        elif not silent:
            self.out(code)
        return {"status": "ok", "execution_count": self.execution_count, "payload": [],
                "user_expressions": {}}

    def do_complete(self, code: str, cursor_pos: int) -> dict[str, Any]:
        if code == "crash":
            raise RuntimeError("completion crashed")
        words = ["loop", "sleep", "raise", "input", "print", "modules"]
        start = code.rfind(" ", 0, cursor_pos) + 1
        prefix = code[start:cursor_pos]
        return {"status": "ok", "matches": [w for w in words if w.startswith(prefix)],
                "cursor_start": start, "cursor_end": cursor_pos, "metadata": {}}


class ConcurrentKernel(CommandKernel):
    """The command kernel, declaring that its hooks may run at the same time (subshells)."""

    implementation = "concurrent commands"
    concurrent_hooks = True


class AsyncKernel(CommandKernel):
    """The same commands behind an ``async def`` hook, with a newer keyword argument."""

    async def do_execute(  # type: ignore[override]
        self,
        code: str,
        silent: bool,
        store_history: bool = True,
        user_expressions: dict[str, Any] | None = None,
        allow_stdin: bool = False,
        *,
        cell_id: str | None = None,
    ) -> Any:
        import asyncio  # here, not at the top: the import-footprint test runs this module

        await asyncio.sleep(0)
        if code.strip() == "cell-id":
            self.out(f"cell_id={cell_id}")
            return {"status": "ok", "execution_count": self.execution_count}
        if code.strip() == "async-busy":  # stuck without ever awaiting
            self.out("started\n")
            while True:
                pass
        if code.strip() == "async-loop":
            self.out("started\n")
            while True:
                await asyncio.sleep(0.01)
        return CommandKernel.do_execute(self, code, silent, store_history, user_expressions,
                                        allow_stdin)


class BrokenInitKernel(Kernel):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        raise RuntimeError("the database is not there")


class BadHookKernel(Kernel):
    def do_execute(self, code):  # type: ignore[no-untyped-def, override]
        return {"status": "ok"}


class NoSuperKernel(Kernel):
    def __init__(self, **kwargs: Any) -> None:
        pass


class PythonKernel(Kernel):
    """Runs Python code with exec: attacks send ipykernel and kernelkit the same cell."""

    implementation = "kk-python"
    implementation_version = "0.1"
    language = "python"
    language_info = {"name": "python", "mimetype": "text/x-python", "file_extension": ".py"}
    banner = "exec-based test kernel"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        # display(obj): rich output, widgets included, as in IPython (Kernel.display).
        self.namespace: dict[str, Any] = {"__name__": "__main__", "display": self.display}

    def do_execute(
        self,
        code: str,
        silent: bool,
        store_history: bool = True,
        user_expressions: dict[str, Any] | None = None,
        allow_stdin: bool = False,
    ) -> Any:
        exec(compile(code, "<cell>", "exec"), self.namespace)
        return {"status": "ok", "execution_count": self.execution_count, "payload": [],
                "user_expressions": {}}
