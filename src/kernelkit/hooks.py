"""The author's hooks: how each is called, decided once at start-up.

ipykernel 7 calls ``do_execute`` and ``do_history`` with keyword arguments, and real
wrapper kernels rely on it: ``do_execute(self, code, silent, store_history=True,
user_expressions=None, **kwargs)`` takes ``allow_stdin`` by keyword only. Older kernels
were written for positional calls, sometimes with their own parameter names. Each hook
is therefore checked against ipykernel 7's convention first and, failing that, against
the positional one; a hook that fits neither stops the kernel with a message naming
the class, the hook and why, instead of failing on every request.
"""

from __future__ import annotations

from typing import Any


class HookError(TypeError):
    """A kernel hook that cannot be called the way the protocol needs to call it."""


# The arguments each hook is given, in ipykernel's order.
HOOK_ARGS: dict[str, tuple[str, ...]] = {
    "do_execute": ("code", "silent", "store_history", "user_expressions", "allow_stdin"),
    "do_complete": ("code", "cursor_pos"),
    "do_inspect": ("code", "cursor_pos", "detail_level"),
    "do_history": (
        "hist_access_type",
        "output",
        "raw",
        "session",
        "start",
        "stop",
        "n",
        "pattern",
        "unique",
    ),
    "do_is_complete": ("code",),
    "do_shutdown": ("restart",),
}
# Hooks ipykernel 7 calls with keywords (the rest it calls positionally).
BY_KEYWORD: frozenset[str] = frozenset({"do_execute", "do_history"})
# Newer keyword arguments, passed only to hooks that accept them.
HOOK_OPTIONAL_KWARGS: dict[str, tuple[str, ...]] = {
    "do_execute": ("cell_id",),
    "do_inspect": ("omit_sections",),
}


class Plan:
    """How one hook is called: by keyword or by position, and which optional keywords."""

    __slots__ = ("by_keyword", "optional")

    def __init__(self, by_keyword: bool, optional: frozenset[str]) -> None:
        self.by_keyword = by_keyword
        self.optional = optional

    def __repr__(self) -> str:
        how = "keywords" if self.by_keyword else "positions"
        return f"Plan({how}, optional={sorted(self.optional)})"


def check_hooks(kernel: object) -> dict[str, Plan]:
    """Check once, at start-up, that every hook can be called; say how to call each.

    Raises HookError naming the class, the hook and the reason, so the kernel can
    refuse to start with a clear message instead of failing on the first request.
    """
    plans: dict[str, Plan] = {}
    cls = type(kernel).__name__
    for name, args in HOOK_ARGS.items():
        hook = getattr(kernel, name, None)
        if not callable(hook):
            raise HookError(f"{cls}.{name} is not callable")
        shape = _shape(hook)
        if isinstance(shape, str):
            raise HookError(f"{cls}.{name}'s signature cannot be read: {shape}")
        by_keyword = name in BY_KEYWORD
        problem = shape.problem((), args) if by_keyword else shape.problem(args, ())
        if problem is not None and by_keyword and shape.problem(args, ()) is None:
            by_keyword, problem = False, None  # written for positional calls: fine too
        if problem is not None:
            shown = ", ".join(f"{a}=…" for a in args) if by_keyword else ", ".join(args)
            raise HookError(f"{cls}.{name} cannot be called as {name}({shown}): {problem}")
        filled = args if by_keyword else ()
        optional = frozenset(kw for kw in HOOK_OPTIONAL_KWARGS.get(name, ())
                             if shape.problem(() if by_keyword else args, (*filled, kw)) is None)
        plans[name] = Plan(by_keyword, optional)
    return plans


class _Shape:
    """A callable's parameters (without ``self``), enough to tell whether a call binds."""

    __slots__ = ("kwonly", "names", "posonly", "required", "varargs", "varkw")

    def __init__(self, names: tuple[str, ...], posonly: int, required: frozenset[str],
                 kwonly: tuple[str, ...], varargs: bool, varkw: bool) -> None:
        self.names = names  # positional parameters, in order
        self.posonly = posonly  # how many of them cannot be given by keyword
        self.required = required  # parameters (positional or keyword-only) without defaults
        self.kwonly = kwonly
        self.varargs = varargs
        self.varkw = varkw

    def problem(self, positional: tuple[str, ...], keywords: tuple[str, ...]) -> str | None:
        """Why a call with these positional and keyword arguments would fail, or None."""
        n = len(positional)
        if n > len(self.names) and not self.varargs:
            return f"it takes {len(self.names)} positional argument(s) but {n} are passed"
        filled = set(self.names[:n])
        for kw in keywords:
            if kw in filled:
                return f"it gets {kw!r} twice"
            if kw in self.names[self.posonly:] or kw in self.kwonly:
                filled.add(kw)
            elif not self.varkw:
                return f"it takes no argument {kw!r}"
        missing = [p for p in (*self.names, *self.kwonly) if p in self.required and p not in filled]
        if missing:
            return f"missing required argument(s) {', '.join(missing)}"
        return None


def _shape(hook: Any) -> _Shape | str:
    """The hook's parameters, read off a plain method's code object when it is one.

    Reading ``__code__`` is what makes start-up skip importing ``inspect``.
    """
    func: Any = getattr(hook, "__func__", None)
    code = getattr(func, "__code__", None)
    if func is None or code is None or getattr(hook, "__self__", None) is None:
        return _signature_shape(hook)
    npos = code.co_argcount
    names = code.co_varnames[1:npos]
    kwonly = code.co_varnames[npos : npos + code.co_kwonlyargcount]
    defaults = len(func.__defaults__ or ())
    required = set(names[: len(names) - defaults] if defaults else names)
    required |= {k for k in kwonly if k not in (func.__kwdefaults__ or {})}
    return _Shape(names, max(code.co_posonlyargcount - 1, 0), frozenset(required), kwonly,
                  bool(code.co_flags & 0x04), bool(code.co_flags & 0x08))


def _signature_shape(hook: Any) -> _Shape | str:
    import inspect

    try:
        params = list(inspect.signature(hook).parameters.values())
    except (TypeError, ValueError) as exc:
        return str(exc)
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return _Shape(
        tuple(p.name for p in positional),
        sum(p.kind is p.POSITIONAL_ONLY for p in params),
        frozenset(p.name for p in params if p.default is p.empty
                  and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)),
        tuple(p.name for p in params if p.kind is p.KEYWORD_ONLY),
        any(p.kind is p.VAR_POSITIONAL for p in params),
        any(p.kind is p.VAR_KEYWORD for p in params),
    )
