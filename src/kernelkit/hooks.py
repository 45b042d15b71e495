"""The author's hooks: the arguments each is called with, checked once at start-up.

A hook that cannot take the protocol's arguments would fail on every request; found
at start-up, it stops the kernel with a message naming the class, the hook and why.
"""

from __future__ import annotations

from typing import Any


class HookError(TypeError):
    """A kernel hook that cannot be called the way the protocol needs to call it."""


# Positional arguments each hook is called with, as ipykernel calls them.
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
# Newer keyword arguments, passed only to hooks that accept them.
HOOK_OPTIONAL_KWARGS: dict[str, tuple[str, ...]] = {
    "do_execute": ("cell_id",),
    "do_inspect": ("omit_sections",),
}


def check_hooks(kernel: object) -> dict[str, frozenset[str]]:
    """Check once, at start-up, that every hook accepts its arguments.

    Returns which optional keyword arguments each hook accepts. Raises HookError
    naming the class, the hook and the reason, so the kernel can refuse to start
    with a clear message instead of failing on the first request.
    """
    accepted: dict[str, frozenset[str]] = {}
    cls = type(kernel).__name__
    for name, args in HOOK_ARGS.items():
        hook = getattr(kernel, name, None)
        if not callable(hook):
            raise HookError(f"{cls}.{name} is not callable")
        problem, shape = _plain_method_shape(hook, len(args))
        if problem is None and shape is None:
            problem, shape = _signature_shape(hook, args)
        keywords = shape or frozenset()
        if problem is not None:
            shown = ", ".join(args)
            raise HookError(f"{cls}.{name} cannot be called as {name}({shown}): {problem}")
        optional = HOOK_OPTIONAL_KWARGS.get(name, ())
        accepted[name] = frozenset(kw for kw in optional if keywords is ALL or kw in keywords)
    return accepted


ALL: frozenset[str] = frozenset({"*"})  # a hook with **kwargs takes any keyword


def _plain_method_shape(hook: Any, n: int) -> tuple[str | None, frozenset[str] | None]:
    """(problem, keyword names) read off a plain Python method's code object.

    Reading ``__code__`` is what makes start-up skip importing ``inspect``; any other
    kind of callable answers (None, None) and goes to ``_signature_shape``.
    """
    func: Any = getattr(hook, "__func__", None)
    code = getattr(func, "__code__", None)
    if func is None or code is None or getattr(hook, "__self__", None) is None:
        return None, None
    positional = code.co_argcount - 1  # without self
    defaults = len(func.__defaults__ or ())
    names = code.co_varnames[: code.co_argcount + code.co_kwonlyargcount]
    kwonly = names[code.co_argcount :]
    varargs, varkw = bool(code.co_flags & 0x04), bool(code.co_flags & 0x08)
    required_kwonly = [k for k in kwonly if k not in (func.__kwdefaults__ or {})]
    if positional - defaults > n:
        missing = names[1 + n : 1 + positional - defaults]
        return f"missing required argument(s) {', '.join(missing)}", None
    if positional < n and not varargs:
        return f"it takes {positional} argument(s) but {n} are passed", None
    if required_kwonly:
        return f"missing required keyword-only argument(s) {', '.join(required_kwonly)}", None
    if varkw:
        return None, ALL
    # What a keyword can still fill: past the n positional ones, not positional-only.
    keywords = names[1 + max(n, code.co_posonlyargcount - 1) :]
    return None, frozenset(keywords)


def _signature_shape(hook: Any, args: tuple[str, ...]) -> tuple[str | None, frozenset[str]]:
    import inspect

    try:
        sig = inspect.signature(hook)
    except (TypeError, ValueError) as exc:
        return f"its signature cannot be read: {exc}", frozenset()
    try:
        sig.bind(*args)
    except TypeError as exc:
        return str(exc), frozenset()
    params = sig.parameters
    if any(p.kind is p.VAR_KEYWORD for p in params.values()):
        return None, ALL
    return None, frozenset(k for k, p in params.items() if p.kind is not p.POSITIONAL_ONLY)
