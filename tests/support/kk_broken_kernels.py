"""Kernels with one defect each, made through kernelkit's public Kernel API.

Each is the command kernel of kk_testkernels (so tests/support/commands_samples.toml
drives it) with one thing an author could get wrong. tests/test_check.py runs
``kernelkit check`` against each and expects the check named in DEFECTS to fail.
"""

from __future__ import annotations

from typing import Any

from kk_testkernels import CommandKernel


class BadStatusKernel(CommandKernel):
    """execute_reply status is not one of ok/error/aborted."""

    def do_execute(self, code: str, silent: bool, store_history: bool = True,
                   user_expressions: Any = None, allow_stdin: bool = False) -> Any:
        reply = super().do_execute(code, silent, store_history, user_expressions, allow_stdin)
        return {**reply, "status": "okay"}


class StreamListKernel(CommandKernel):
    """Publishes stream text as a list of lines instead of a string."""

    def out(self, text: str) -> None:
        self.send_response(self.iopub_socket, "stream",
                           {"name": "stdout", "text": text.splitlines()})


class NullCountKernel(CommandKernel):
    """execute_reply execution_count is null."""

    def do_execute(self, code: str, silent: bool, store_history: bool = True,
                   user_expressions: Any = None, allow_stdin: bool = False) -> Any:
        reply = super().do_execute(code, silent, store_history, user_expressions, allow_stdin)
        return {**reply, "execution_count": None}


class StuckCountKernel(CommandKernel):
    """The execution counter never moves: every reply says 1."""

    def do_execute(self, code: str, silent: bool, store_history: bool = True,
                   user_expressions: Any = None, allow_stdin: bool = False) -> Any:
        reply = super().do_execute(code, silent, store_history, user_expressions, allow_stdin)
        return {**reply, "execution_count": 1}


class NoisySilentKernel(CommandKernel):
    """Echoes the code even when asked to execute silently."""

    def do_execute(self, code: str, silent: bool, store_history: bool = True,
                   user_expressions: Any = None, allow_stdin: bool = False) -> Any:
        return super().do_execute(code, False, store_history, user_expressions, allow_stdin)


class QuietErrorKernel(CommandKernel):
    """Returns an error status without a traceback and publishes no error message."""

    def do_execute(self, code: str, silent: bool, store_history: bool = True,
                   user_expressions: Any = None, allow_stdin: bool = False) -> Any:
        if code.startswith("raise"):
            return {"status": "error", "ename": "ValueError", "evalue": "boom",
                    "execution_count": self.execution_count}
        return super().do_execute(code, silent, store_history, user_expressions, allow_stdin)


class LostInputKernel(CommandKernel):
    """Asks for input but throws the answer away."""

    def do_execute(self, code: str, silent: bool, store_history: bool = True,
                   user_expressions: Any = None, allow_stdin: bool = False) -> Any:
        if code.startswith("input"):
            self.raw_input(code.partition(" ")[2])
            self.out("got: nothing")
            return {"status": "ok", "execution_count": self.execution_count,
                    "payload": [], "user_expressions": {}}
        return super().do_execute(code, silent, store_history, user_expressions, allow_stdin)


class TextCursorKernel(CommandKernel):
    """complete_reply cursor_start is a string."""

    def do_complete(self, code: str, cursor_pos: int) -> dict[str, Any]:
        reply = super().do_complete(code, cursor_pos)
        return {**reply, "cursor_start": str(reply["cursor_start"])}


class BackwardsCursorKernel(CommandKernel):
    """complete_reply cursor range ends before it starts."""

    def do_complete(self, code: str, cursor_pos: int) -> dict[str, Any]:
        reply = super().do_complete(code, cursor_pos)
        return {**reply, "cursor_start": cursor_pos, "cursor_end": 0}


class MaybeCompleteKernel(CommandKernel):
    """is_complete_reply status is not one of complete/incomplete/invalid/unknown."""

    def do_is_complete(self, code: str) -> dict[str, Any]:
        return {"status": "maybe"}


class FoundYesKernel(CommandKernel):
    """inspect_reply found is the string "yes"."""

    def do_inspect(self, code: str, cursor_pos: int, detail_level: int = 0,
                   omit_sections: Any = ()) -> dict[str, Any]:
        return {"status": "ok", "found": "yes", "data": {"text/plain": code}, "metadata": {}}


class FlatHistoryKernel(CommandKernel):
    """history_reply entries are bare strings instead of (session, line, input)."""

    def do_history(self, hist_access_type: str, output: bool, raw: bool, session: Any = None,
                   start: Any = None, stop: Any = None, n: Any = None, pattern: Any = None,
                   unique: bool = False) -> dict[str, Any]:
        return {"status": "ok", "history": ["print hello"]}


class OldProtocolKernel(CommandKernel):
    """Claims protocol 4.1 in kernel_info_reply."""

    @property
    def kernel_info(self) -> dict[str, Any]:
        return {**super().kernel_info, "protocol_version": "4.1"}


class FalseDebuggerKernel(CommandKernel):
    """Claims the debugger feature without handling debug_request."""

    @property
    def kernel_info(self) -> dict[str, Any]:
        return {**super().kernel_info, "supported_features": ["debugger"]}


# kernel class -> (the check its defect must fail, a part of the reason it gives)
DEFECTS: dict[str, tuple[str, str]] = {
    "BadStatusKernel": ("execute.ok", "'status' is 'okay', not one of ok, error, aborted"),
    "StreamListKernel": ("execute.ok", "stream on iopub: 'text' is a list"),
    "NullCountKernel": ("execute.ok", "execute_reply execution_count is None"),
    "StuckCountKernel": ("execute.execution_count", "counted 1 then 1"),
    "NoisySilentKernel": ("execute.silent", "a silent execution published"),
    "QuietErrorKernel": ("execute.error", "'traceback' is missing"),
    "LostInputKernel": ("stdin.input", "did not reach the code"),
    "TextCursorKernel": ("introspection.complete", "'cursor_start' is a string"),
    "BackwardsCursorKernel": ("introspection.complete", "is not a range"),
    "MaybeCompleteKernel": ("introspection.is_complete", "'status' is 'maybe'"),
    "FoundYesKernel": ("introspection.inspect", "'found' is a string"),
    "FlatHistoryKernel": ("introspection.history", "not a 3-item list"),
    "OldProtocolKernel": ("kernel_info.protocol_version", "protocol 4.1 is not 5.x"),
    "FalseDebuggerKernel": ("kernel_info.supported_features", "'debugger' is claimed"),
}
