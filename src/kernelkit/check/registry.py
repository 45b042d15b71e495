"""What a check is, the order checks run in, and what running them produces.

A check is a function of the harness that returns a short reason when it passes and
raises ``Fail`` or ``Skip`` otherwise. Each group's module registers its checks with
``@check``; ``ORDER`` says the order they run in, on its own, so that the order does
not hang on which module is imported first (lifecycle's restart and shutdown must come
last, and iopub_welcome early, while the first client's welcome is fresh).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from .harness import Harness

GROUPS = (
    "kernel_info",
    "execute",
    "introspection",
    "stdin",
    "interrupt",
    "control",
    "subshells",
    "comms",
    "heartbeat",
    "security",
    "lifecycle",
)

# Every check, in the order it runs. A check not listed here fails registration.
ORDER = (
    "kernel_info.shell",
    "kernel_info.control",
    "kernel_info.protocol_version",
    "kernel_info.supported_features",
    "subshells.lifecycle",
    "subshells.execute",
    "subshells.while_busy",
    "subshells.unknown",
    "lifecycle.iopub_welcome",
    "execute.ok",
    "execute.execution_count",
    "execute.silent",
    "execute.store_history",
    "execute.error",
    "execute.result",
    "execute.user_expressions",
    "execute.stop_on_error",
    "execute.no_stop_on_error",
    "introspection.complete",
    "introspection.inspect",
    "introspection.is_complete",
    "introspection.history",
    "stdin.input",
    "stdin.not_allowed",
    "interrupt.running",
    "interrupt.idle",
    "control.while_busy",
    "comms.unknown_target",
    "comms.info",
    "comms.round_trip",
    "comms.info_open",
    "comms.buffers",
    "heartbeat.idle",
    "heartbeat.while_busy",
    "security.bad_signature",
    "security.unsigned",
    "security.replay",
    "lifecycle.restart",
    "lifecycle.shutdown",
)


class Fail(Exception):
    """The check failed; the message says why."""


class Skip(Exception):
    """The check does not apply; the message says why."""


class KernelGone(Exception):
    """The kernel cannot be started or restarted: the remaining checks cannot run."""


@dataclass
class Result:
    name: str
    group: str
    result: str  # "pass", "fail" or "skip"
    reason: str
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return {
            "check": self.name,
            "group": self.group,
            "result": self.result,
            "reason": self.reason,
            "time": round(self.seconds, 3),
        }


CheckFunc = Callable[["Harness"], "str | None"]


@dataclass
class CheckDef:
    name: str
    title: str
    func: CheckFunc

    @property
    def group(self) -> str:
        return self.name.split(".", 1)[0]


# name -> definition, filled by the group modules as they are imported.
_DEFINED: dict[str, CheckDef] = {}


def check(name: str, title: str) -> Callable[[CheckFunc], CheckFunc]:
    """Register a check under ``name`` (``group.check``), which ``ORDER`` must list."""

    def register(func: CheckFunc) -> CheckFunc:
        if name.split(".", 1)[0] not in GROUPS or name not in ORDER or name in _DEFINED:
            raise ValueError(f"check {name!r}: its group must be in GROUPS, its name in "
                             "ORDER, once")
        _DEFINED[name] = CheckDef(name, title, func)
        return func

    return register


def defined() -> list[CheckDef]:
    """The registered checks in ``ORDER``; every name in ORDER must be registered by then."""
    missing = [name for name in ORDER if name not in _DEFINED]
    if missing:
        raise LookupError(f"checks listed in ORDER but not defined: {', '.join(missing)}")
    return [_DEFINED[name] for name in ORDER]


class Progress(Protocol):
    def begin(self, kernel: str, total: int) -> None: ...

    def start(self, name: str) -> None: ...

    def done(self, result: Result) -> None: ...

    def note(self, text: str) -> None: ...

    def end(self) -> None: ...


@dataclass
class Report:
    kernel: str
    display_name: str = ""
    language: str = ""
    interrupt_mode: str = ""
    samples: str = "none"
    kernel_info: dict[str, Any] = field(default_factory=dict)
    results: list[Result] = field(default_factory=list)
    messages: int = 0
    seconds: float = 0.0
    notes: list[str] = field(default_factory=list)  # restarts between checks, and why

    def counts(self) -> dict[str, int]:
        out = {"pass": 0, "fail": 0, "skip": 0}
        for r in self.results:
            out[r.result] += 1
        return out

    @property
    def failed(self) -> bool:
        return any(r.result == "fail" for r in self.results)
