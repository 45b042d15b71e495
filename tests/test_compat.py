"""ipykernel's inside parts, in-process (kernelkit.compat, kernelkit.tables).

Real wrapper kernels on them are in test_adopt.py; these tests pin each rule down
with a FakeTransport: a kernel's own handlers are honoured and still answer exactly
once, ``session.send`` sends as the kernel, traitlets is for kernels that use it.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import pytest

from kernelkit.compat.kernelbase import Kernel
from kernelkit.testing import attach, request


class Base(Kernel):
    implementation = "compat-probe"
    language_info = {"name": "probe", "mimetype": "text/plain", "file_extension": ".txt"}
    language_version = "1.2"

    def do_execute(self, code: str, silent: bool, store_history: bool = True,  # type: ignore[override]
                   user_expressions: Any = None, allow_stdin: bool = False) -> Any:
        self.send_response(self.iopub_socket, "stream", {"name": "stdout", "text": code})
        return {"status": "ok"}


class OwnKernelInfo(Base):
    """zsh-jupyter-kernel's shape: its own handler, answering through session.send."""

    def kernel_info_request(self, stream: Any, ident: Any, parent: Any) -> None:  # type: ignore[override]
        content = {"status": "ok", "implementation": "own", "language_info": {"name": "own"}}
        self.session.send(stream, "kernel_info_reply", content, parent, ident)


def test_an_overridden_handler_answers_and_missing_fields_are_filled() -> None:
    kernel = OwnKernelInfo()
    transport, dispatcher = attach(kernel)
    msg = request("kernel_info_request")
    dispatcher.handle("shell", msg)
    reply = transport.reply_to(msg)
    assert reply["implementation"] == "own"
    assert reply["language_info"] == {"name": "own", "version": "1.2"}
    assert reply["protocol_version"] and "banner" in reply  # from kernelkit's own info
    assert transport.statuses(msg) == ["busy", "idle"]


class Twice(Base):
    def kernel_info_request(self, stream: Any, ident: Any, parent: Any) -> None:  # type: ignore[override]
        for n in (1, 2):
            self.session.send(stream, "kernel_info_reply", {"status": "ok", "banner": str(n)},
                              parent, ident)


class Silent(Base):
    async def kernel_info_request(self, stream: Any, ident: Any, parent: Any) -> None:  # type: ignore[override]
        return None


class Raises(Base):
    def kernel_info_request(self, stream: Any, ident: Any, parent: Any) -> None:  # type: ignore[override]
        raise RuntimeError("broken handler")


@pytest.mark.parametrize(
    ("cls", "check"),
    [
        (Twice, lambda r: r["banner"] == "1"),
        (Silent, lambda r: r["status"] == "error" and r["ename"] == "NoReply"),
        (Raises, lambda r: r["status"] == "error" and "broken handler" in r["evalue"]),
    ],
)
def test_a_kernels_own_handler_still_answers_exactly_once(cls: type[Kernel], check: Any) -> None:
    kernel = cls()
    transport, dispatcher = attach(kernel)
    msg = request("kernel_info_request")
    dispatcher.handle("shell", msg)
    assert check(transport.reply_to(msg))  # reply_to: exactly one reply
    assert transport.statuses(msg) == ["busy", "idle"]


class CallsSuper(Base):
    async def execute_request(self, stream: Any, ident: Any, parent: Any) -> None:  # type: ignore[override]
        self.seen = parent["content"]["code"]
        await super().execute_request(stream, ident, parent)


def test_a_handler_that_calls_super_gets_kernelkits_handling() -> None:
    kernel = CallsSuper()
    transport, dispatcher = attach(kernel)
    msg = request("execute_request", {"code": "abc"})
    dispatcher.handle("shell", msg)
    assert kernel.seen == "abc"
    assert transport.reply_to(msg)["status"] == "ok"
    assert [s.content["text"] for s in transport.iopub(msg, "stream")] == ["abc"]


class InstallsCommHandlers(Base):
    """metakernel's shape: the comm messages routed to the comm manager by hand."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        import comm

        self.comm_manager = comm.get_comm_manager()  # works inside __init__, as under ipykernel
        self.opened: list[str] = []
        self.comm_manager.register_target("t", lambda c, m: self.opened.append(c.comm_id))
        for msg_type in ("comm_open", "comm_msg", "comm_close"):
            self.shell_handlers[msg_type] = getattr(self.comm_manager, msg_type)


def test_comm_handlers_installed_by_hand_reach_the_comm_manager() -> None:
    kernel = InstallsCommHandlers()
    transport, dispatcher = attach(kernel)
    msg = request("comm_open", {"comm_id": "c1", "target_name": "t", "data": {}})
    dispatcher.handle("shell", msg)
    assert kernel.opened == ["c1"]
    assert transport.iopub(msg, "comm_close") == []


class PublishesThroughSession(Base):
    def do_execute(self, code: str, silent: bool, store_history: bool = True,  # type: ignore[override]
                   user_expressions: Any = None, allow_stdin: bool = False) -> Any:
        self.session.send(self.iopub_socket, "display_data",
                          {"data": {"text/plain": code}, "metadata": {}},
                          parent=self._parent_header)
        return {"status": "ok"}


def test_session_send_on_iopub_is_output_of_the_request() -> None:
    kernel = PublishesThroughSession()
    transport, dispatcher = attach(kernel)
    msg = request("execute_request", {"code": "shown"})
    dispatcher.handle("shell", msg)
    [shown] = transport.iopub(msg, "display_data")
    assert shown.content["data"] == {"text/plain": "shown"}
    assert bool(kernel.session) and kernel.session.msg("x")["msg_type"] == "x"


def test_handlers_tables_and_parent_are_there() -> None:
    app = object()
    kernel = Base(parent=app)
    assert kernel.parent is app
    assert "execute_request" in kernel.shell_handlers
    assert "debug_request" in kernel.control_handlers
    assert kernel.protocol_version.startswith("5.")


def _python(code: str) -> dict[str, Any]:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def test_ipykernel_imports_resolve_to_kernelkit_and_traitlets_stays_out() -> None:
    got = _python(
        "import json, sys\n"
        "from kernelkit.compat import install\n"
        "install()\n"
        "from ipykernel.kernelbase import Kernel\n"
        "from ipykernel.kernelapp import IPKernelApp, launch_new_instance\n"
        "import ipykernel\n"
        "class Plain(Kernel):\n"
        "    implementation = 'plain'\n"
        "class App(IPKernelApp):\n"
        "    pass\n"
        "print(json.dumps({'base': Kernel.__module__, 'app': IPKernelApp.__module__,\n"
        "    'version': ipykernel.__version__, 'traitlets': 'traitlets' in sys.modules,\n"
        "    'zmq_ipykernel': 'ipykernel.zmqshell' in sys.modules}))\n"
    )
    assert got == {"base": "kernelkit.compat.kernelbase", "app": "kernelkit.compat.kernelapp",
                   "version": got["version"], "traitlets": False, "zmq_ipykernel": False}
    assert got["version"][0].isdigit()


def test_a_kernel_with_config_traits_is_configurable_from_its_app() -> None:
    got = _python(
        "import json\n"
        "from kernelkit.compat import install\n"
        "install()\n"
        "from ipykernel.kernelbase import Kernel\n"
        "from ipykernel.kernelapp import IPKernelApp\n"
        "from traitlets import Dict, Unicode\n"
        "from traitlets.config import Configurable\n"
        "class Configured(Kernel):\n"
        "    plot_settings = Dict({'backend': 'inline'}).tag(config=True)\n"
        "class Sub(Configured):\n"
        "    pass\n"
        "class App(IPKernelApp):\n"
        "    config_dir = Unicode('here')\n"
        "app = App()\n"
        "app.initialize(['--Configured.plot_settings={\"backend\": \"svg\"}', '-f', 'c.json',"
        " 'extra.txt'])\n"
        "k = Sub(parent=app)\n"
        "print(json.dumps({'configurable': isinstance(k, Configurable),\n"
        "    'settings': k.plot_settings, 'file': app.connection_file, 'extra': app.extra_args,\n"
        "    'parent': k.parent is app, 'subshells': 'execute_request' in k.shell_handlers}))\n"
    )
    assert got == {"configurable": True, "settings": {"backend": "svg"}, "file": "c.json",
                   "extra": ["extra.txt"], "parent": True, "subshells": True}


class OwnCommHandler(Base):
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.shell_handlers["comm_msg"] = self.broken_comm_msg

    def broken_comm_msg(self, stream: Any, ident: Any, msg: Any) -> None:
        raise RuntimeError("comm handler fails")


def test_a_failing_handler_of_a_message_that_is_not_a_request_gets_no_reply() -> None:
    kernel = OwnCommHandler()
    transport, dispatcher = attach(kernel)
    msg = request("comm_msg", {"comm_id": "c1", "data": {}})
    dispatcher.handle("shell", msg)
    assert transport.replies(msg) == []
    assert transport.statuses(msg) == ["busy", "idle"]
