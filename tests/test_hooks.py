"""How hooks are called (kernelkit.hooks): ipykernel 7's keywords, or positions for old kernels."""

from __future__ import annotations

from typing import Any

import pytest

from kernelkit import Kernel
from kernelkit.hooks import HookError, check_hooks
from kernelkit.testing import attach, request


class ZshShaped(Kernel):
    """zsh-jupyter-kernel's signature: allow_stdin arrives only through **kwargs."""

    def do_execute(self, code: str, silent: bool, store_history: bool = True,  # type: ignore[override]
                   user_expressions: Any = None, **kwargs: Any) -> Any:
        self.got = {"code": code, "silent": silent, **kwargs}
        return {"status": "ok"}


class OwnNames(Kernel):
    """Written for positional calls, with its own parameter names."""

    def do_execute(self, source, quiet, store, exprs, stdin):  # type: ignore[no-untyped-def, override]
        self.got = {"code": source, "allow_stdin": stdin}
        return {"status": "ok"}


class KeywordOnly(Kernel):
    def do_execute(self, code: str, silent: bool, *, store_history: bool = True,  # type: ignore[override]
                   user_expressions: Any = None, allow_stdin: bool = False,
                   cell_id: str | None = None) -> Any:
        self.got = {"code": code, "allow_stdin": allow_stdin, "cell_id": cell_id}
        return {"status": "ok"}


class HistoryByKeyword(Kernel):
    def do_history(self, hist_access_type: str, output: bool, raw: bool,  # type: ignore[override]
                   **rest: Any) -> Any:
        return {"status": "ok", "history": [[0, 1, f"{hist_access_type}:{rest.get('n')}"]]}


@pytest.mark.parametrize(
    ("cls", "expected"),
    [
        (ZshShaped, {"code": "x", "silent": False, "allow_stdin": True, "cell_id": "c1"}),
        (OwnNames, {"code": "x", "allow_stdin": True}),
        (KeywordOnly, {"code": "x", "allow_stdin": True, "cell_id": "c1"}),
    ],
)
def test_execute_reaches_each_signature(cls: type[Kernel], expected: dict[str, Any]) -> None:
    kernel = cls()
    transport, dispatcher = attach(kernel)
    msg = request("execute_request", {"code": "x", "allow_stdin": True})
    msg.metadata = {"cellId": "c1"}
    dispatcher.handle("shell", msg)
    assert transport.reply_to(msg)["status"] == "ok"
    assert kernel.got == expected  # type: ignore[attr-defined]


def test_history_is_called_with_keywords() -> None:
    kernel = HistoryByKeyword()
    assert check_hooks(kernel)["do_history"].by_keyword
    transport, dispatcher = attach(kernel)
    msg = request("history_request", {"hist_access_type": "tail", "output": False, "raw": True,
                                      "n": 3})
    dispatcher.handle("shell", msg)
    assert transport.reply_to(msg)["history"] == [[0, 1, "tail:3"]]


def test_positional_kernels_keep_positional_calls() -> None:
    plans = check_hooks(OwnNames())
    assert not plans["do_execute"].by_keyword
    assert plans["do_execute"].optional == frozenset()
    assert plans["do_complete"].by_keyword is False


class TooFew(Kernel):
    def do_execute(self, code):  # type: ignore[no-untyped-def, override]
        return {"status": "ok"}


class NeedsMore(Kernel):
    def do_execute(self, code, silent, store_history, user_expressions, allow_stdin,  # type: ignore[no-untyped-def, override]
                   extra):
        return {"status": "ok"}


class NeedsKeyword(Kernel):
    def do_complete(self, code, cursor_pos, *, mode):  # type: ignore[no-untyped-def, override]
        return {"status": "ok"}


@pytest.mark.parametrize(
    ("cls", "fragment"),
    [
        (TooFew, "do_execute(code=…, silent=…, store_history=…, user_expressions=…, "
                 "allow_stdin=…): it takes no argument 'silent'"),
        (NeedsMore, "missing required argument(s) extra"),
        (NeedsKeyword, "do_complete(code, cursor_pos): missing required argument(s) mode"),
    ],
)
def test_unusable_hooks_are_named_at_start_up(cls: type[Kernel], fragment: str) -> None:
    with pytest.raises(HookError) as caught:
        check_hooks(cls())
    assert cls.__name__ in str(caught.value)
    assert fragment in str(caught.value)
