"""Language-specific code samples the checks run, built in or from a TOML file.

A samples file has one table per sample; every table and key is optional, and a
check whose sample is missing is skipped with the reason "no sample: NAME"::

    [hello]                      # prints something; `output` must appear in the output
    code = 'print("hello, world")'
    output = "hello, world"

    [error]                      # raises; `ename` (optional) is the expected error name
    code = "1 / 0"
    ename = "ZeroDivisionError"

    [long_running]               # runs until interrupted, after printing `started`
    code = '''
    print("started", flush=True)
    while True:
        pass
    '''
    started = "started"

    [input]                      # asks for a line of input and prints what it got
    code = 'print("got", input("say something: "))'
    prompt = "say something: "

    [expression]                 # an expression whose result's text/plain contains `result`
    code = "6 * 7"
    result = "42"

    [complete]                   # completing at the end of `code` offers `match`
    code = "prin"
    match = "print"

    [inspect]                    # inspecting at the end of `code` finds something
    code = "print"

    [is_complete]                # one complete and one incomplete piece of code
    complete = "x = 1"
    incomplete = "for i in range(3):"

    [comm]                       # a comm target that echoes, for the comms group
    target = "kernelkit-check-echo"
    # optional: code run before the comm checks (once per kernel process)
    setup = '''
    import comm
    def echo(c, msg):
        c.on_msg(lambda m: c.send(m["content"]["data"], buffers=m["buffers"]))
    comm.get_comm_manager().register_target("kernelkit-check-echo", echo)
    '''
    buffers = true               # optional: the echo carries the buffers sent, too

What "echoes" means: for every ``comm_msg`` the frontend sends on a comm to
``target``, the kernel sends, while handling it (its parent is that comm_msg, between
its busy and idle), a ``comm_msg`` on the same comm whose ``data`` is the data sent
or holds it as the value of a key, at any depth (``{"echo": sent}``); with
``buffers = true`` that comm_msg also carries the buffers sent, the same bytes in the
same order. The target may answer the ``comm_open`` with comm_msgs of its own, and
must not close the comm itself.

A file given with ``--samples`` overrides the built-in samples table by table.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# sample name -> (required keys, optional keys)
KEYS: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "hello": (("code",), ("output",)),
    "error": (("code",), ("ename",)),
    "long_running": (("code",), ("started",)),
    "input": (("code",), ("prompt",)),
    "expression": (("code", "result"), ()),
    "complete": (("code",), ("match",)),
    "inspect": (("code",), ()),
    "is_complete": ((), ("complete", "incomplete")),
    "comm": (("target",), ("setup", "buffers")),
}
# Keys whose TOML value is a boolean; it is kept as "true" or "false", like every value a string.
BOOLEAN_KEYS = {("comm", "buffers")}


class SamplesError(ValueError):
    """A samples file that cannot be read or has the wrong shape."""


@dataclass
class Samples:
    """The samples for one kernel, and where they came from."""

    source: str = "none"
    tables: dict[str, dict[str, str]] = field(default_factory=dict)

    def get(self, name: str) -> dict[str, str] | None:
        return self.tables.get(name)

    def merged(self, other: Samples) -> Samples:
        """These samples with ``other``'s tables taking precedence."""
        if not self.tables:
            return other
        return Samples(f"{other.source} over {self.source}", {**self.tables, **other.tables})


ECHO = {
    "hello": {"code": "hello, world", "output": "hello, world"},
}

PYTHON = {
    "hello": {"code": 'print("hello, world")', "output": "hello, world"},
    "error": {"code": "1 / 0", "ename": "ZeroDivisionError"},
    "long_running": {
        "code": 'print("started", flush=True)\nwhile True:\n    pass\n',
        "started": "started",
    },
    "input": {"code": 'print("got", input("say something: "))', "prompt": "say something: "},
    "expression": {"code": "6 * 7", "result": "42"},
    "complete": {"code": "prin", "match": "print"},
    "inspect": {"code": "print"},
    "is_complete": {"complete": "x = 1", "incomplete": "for i in range(3):"},
    # The comm package is how Python kernels (ipykernel, xeus-python, kernelkit) expose
    # their comm manager; the names start with _ so that the user namespace stays clean.
    "comm": {
        "target": "kernelkit-check-echo",
        "setup": (
            "import comm as _kk_comm\n"
            "def _kk_echo_target(c, msg):\n"
            "    c.on_msg(lambda m: c.send(m['content']['data'], buffers=m.get('buffers')))\n"
            "_kk_comm.get_comm_manager().register_target('kernelkit-check-echo', "
            "_kk_echo_target)\n"
        ),
        "buffers": "true",
    },
}

DENO = {
    "hello": {"code": 'console.log("hello, world")', "output": "hello, world"},
    "error": {"code": 'throw new Error("boom")', "ename": "Error"},
    "long_running": {
        "code": 'console.log("started");\nwhile (true) {}\n',
        "started": "started",
    },
    "input": {
        "code": 'const answer = prompt("say something:");\nconsole.log("got", answer);',
        "prompt": "say something:",
    },
    "expression": {"code": "6 * 7", "result": "42"},
    "complete": {"code": "Deno.versi", "match": "version"},
    "inspect": {"code": "Deno"},
    "is_complete": {"complete": "let x = 1;", "incomplete": "function f() {"},
}

# The pexpect wrapper kernels below, as they behave on ipykernel. A sample is left out
# where the kernel cannot do it, so that its checks are skipped rather than faked.

# bash_kernel (PyPI bash_kernel). A nonzero exit status is its error, with ename "";
# no stdin, no execute_result, inspect answers found: false, is_complete "unknown".
BASH = {
    "hello": {"code": 'echo "hello, world"', "output": "hello, world"},
    "error": {"code": "false"},
    "long_running": {"code": "echo started; while true; do :; done", "started": "started"},
    "complete": {"code": "ech", "match": "echo"},
}

# zsh-jupyter-kernel (PyPI zsh-jupyter-kernel). A failing command is answered "ok" and
# unfinished code (a continuation prompt) wedges the kernel, so there is no error sample;
# no stdin and no execute_result. Inspect runs man(1) on the word.
ZSH = {
    "hello": {"code": 'echo "hello, world"', "output": "hello, world"},
    "long_running": {"code": "echo started; while true; do :; done", "started": "started"},
    "complete": {"code": "ech", "match": "echo"},
    "inspect": {"code": "echo"},
    "is_complete": {"complete": "echo hi", "incomplete": "if true; then"},
}

# Calysto Scheme (PyPI calysto_scheme, on metakernel); input asks on stdin.
SCHEME = {
    "hello": {"code": '(display "hello, world")', "output": "hello, world"},
    "error": {"code": "(/ 1 0)", "ename": "RunTimeError"},
    "long_running": {
        "code": '(print "started")\n(define (loop) (loop))\n(loop)\n',
        "started": "started",
    },
    "input": {"code": '(print "got" (input "say something: "))', "prompt": "say something: "},
    "expression": {"code": "(* 6 7)", "result": "42"},
    "complete": {"code": "disp", "match": "display"},
    "inspect": {"code": "display"},
    "is_complete": {"complete": "(define x 1)", "incomplete": "(define (f x)"},
}

# gnuplot_kernel (PyPI gnuplot_kernel, on metakernel). Its output comes as the
# execute_result when the command ends. No long_running: the output shows only at the
# end, the kernel gives up on a command after 30 s (and is wedged then), and an
# interrupted command is answered "ok". No stdin; is_complete is metakernel's default,
# which looks only for a trailing newline. Completion is of metakernel's magics only.
GNUPLOT = {
    "hello": {"code": 'print "hello, world"', "output": "hello, world"},
    "error": {"code": "nosuchcommand"},
    "expression": {"code": "print 6*7", "result": "42"},
    "complete": {"code": "%gnup", "match": "%gnuplot"},
    "inspect": {"code": "print"},
}

# Built-in samples by kernelspec name: the kernels this project ships and common peers.
BY_NAME: dict[str, dict[str, dict[str, str]]] = {
    "kernelkit-echo": ECHO,
    "echo": ECHO,  # ipykernel's example Echo kernel (PyPI echo_kernel)
    "python3": PYTHON,  # ipykernel
    "xpython": PYTHON,  # xeus-python
    "deno": DENO,
}
# ... and by the kernelspec's language, for kernels installed under other names.
BY_LANGUAGE: dict[str, dict[str, dict[str, str]]] = {
    "python": PYTHON,
    "bash": BASH,
    "zsh": ZSH,
    "scheme": SCHEME,
    "gnuplot": GNUPLOT,
}


def builtin(kernel_name: str, language: str = "") -> Samples:
    """The built-in samples for a kernelspec, or empty samples."""
    if kernel_name in BY_NAME:
        return Samples(f"built-in ({kernel_name})", BY_NAME[kernel_name])
    lang = language.lower()
    if lang in BY_LANGUAGE:
        return Samples(f"built-in (language {lang})", BY_LANGUAGE[lang])
    return Samples()


def _toml_loads(text: str) -> dict[str, Any]:
    if sys.version_info >= (3, 11):
        import tomllib
    else:  # pragma: no cover - Python 3.10
        import tomli as tomllib  # type: ignore[import-not-found, unused-ignore]
    data: dict[str, Any] = tomllib.loads(text)
    return data


def load(path: str | Path) -> Samples:
    """Read a samples file; SamplesError says what is wrong with it."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SamplesError(f"cannot read samples file {path}: {exc.strerror or exc}") from None
    try:
        data = _toml_loads(text)
    except ValueError as exc:  # tomllib.TOMLDecodeError is a ValueError
        raise SamplesError(f"{path} is not valid TOML: {exc}") from None
    return Samples(str(path), parse(data, str(path)))


def parse(data: dict[str, Any], where: str = "samples") -> dict[str, dict[str, str]]:
    """Check a decoded samples document's shape and return its tables."""
    tables: dict[str, dict[str, str]] = {}
    for name, table in data.items():
        if name not in KEYS:
            known = ", ".join(KEYS)
            raise SamplesError(f"{where}: unknown sample [{name}] (known: {known})")
        if not isinstance(table, dict):
            raise SamplesError(f"{where}: [{name}] must be a table")
        required, optional = KEYS[name]
        values: dict[str, str] = {}
        for key, value in table.items():
            if key not in required + optional:
                allowed = ", ".join(required + optional)
                raise SamplesError(f"{where}: [{name}] has unknown key {key!r} ({allowed})")
            if (name, key) in BOOLEAN_KEYS:
                if not isinstance(value, bool):
                    raise SamplesError(f"{where}: [{name}] {key} must be true or false")
                values[key] = "true" if value else "false"
            elif not isinstance(value, str):
                raise SamplesError(f"{where}: [{name}] {key} must be a string")
            else:
                values[key] = value
        for key in required:
            if key not in values:
                raise SamplesError(f"{where}: [{name}] needs {key!r}")
        tables[name] = values
    return tables
