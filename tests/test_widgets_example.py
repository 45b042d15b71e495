"""examples/python/widgets_kernel.py: a kernelkit Python kernel with ipywidgets 8, installed
with ``kernelkit install`` as its docstring says and driven by jupyter_client as a frontend
(JupyterLab's widget manager) would drive it: the displayed model's comm, ``update`` and
``custom`` messages, and the ``jupyter.widget.control`` comm a reloaded page opens."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from conftest import ROOT, kernelkit

EXAMPLES = ROOT / "examples" / "python"
SPEC = "kk-py-widgets"
VIEW = "application/vnd.jupyter.widget-view+json"


@pytest.fixture(scope="module")
def installed() -> Path:
    """The kernelspec, written by the command the example's docstring gives."""
    prefix = Path(os.environ["JUPYTER_PATH"]).parents[1]  # conftest's test prefix
    done = kernelkit("install", "widgets_kernel:WidgetsKernel", "--name", SPEC,
                     "--prefix", str(prefix), cwd=EXAMPLES)
    assert done.returncode == 0, done.stderr
    return prefix / "share" / "jupyter" / "kernels" / SPEC


class Frontend:
    """A jupyter_client client that keeps every IOPub message, by parent, as a page does."""

    def __init__(self) -> None:
        from jupyter_client.manager import start_new_kernel

        # Started from the repository root, not examples/python: the spec must find it.
        self.km, self.kc = start_new_kernel(kernel_name=SPEC, startup_timeout=60, cwd=str(ROOT))
        self.iopub: list[dict[str, Any]] = []

    def send(self, msg_type: str, content: dict[str, Any], subshell_id: str | None = None,
             metadata: dict[str, Any] | None = None) -> str:
        msg = self.kc.session.msg(msg_type, content, metadata=metadata)
        if subshell_id is not None:
            msg["header"]["subshell_id"] = subshell_id
        self.kc.shell_channel.send(msg)
        return str(msg["header"]["msg_id"])

    def until_idle(self, msg_id: str, timeout: float = 30) -> list[dict[str, Any]]:
        """The IOPub children of msg_id, through its idle status."""
        def mine() -> list[dict[str, Any]]:
            return [m for m in self.iopub if m["parent_header"].get("msg_id") == msg_id]

        deadline = time.monotonic() + timeout
        while not any(m["msg_type"] == "status" and m["content"]["execution_state"] == "idle"
                      for m in mine()):
            self.iopub.append(
                self.kc.get_iopub_msg(timeout=max(0.01, deadline - time.monotonic())))
        return mine()

    def run(self, code: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        msg_id = self.send("execute_request", {"code": code, "silent": False,
                                               "store_history": True, "user_expressions": {},
                                               "allow_stdin": False, "stop_on_error": True})
        reply = self.kc.get_shell_msg(timeout=30)
        assert reply["parent_header"]["msg_id"] == msg_id
        return reply["content"], self.until_idle(msg_id)

    def stdout(self, code: str) -> str:
        reply, msgs = self.run(code)
        assert reply["status"] == "ok", reply
        return "".join(m["content"]["text"] for m in msgs if m["msg_type"] == "stream")

    def show(self, command: str) -> tuple[str, dict[str, Any]]:
        """Run a command that displays a widget: its model id and its comm_open's state."""
        reply, msgs = self.run(command)
        assert reply["status"] == "ok", reply
        view = [m["content"]["data"][VIEW] for m in msgs if m["msg_type"] == "display_data"][-1]
        model_id = view["model_id"]
        assert (view["version_major"], view["version_minor"]) == (2, 0)
        opened = [m["content"] for m in msgs if m["msg_type"] == "comm_open"
                  and m["content"]["comm_id"] == model_id]
        assert len(opened) == 1 and opened[0]["target_name"] == "jupyter.widget"
        return model_id, opened[0]["data"]["state"]

    def comm_msg(self, comm_id: str, data: dict[str, Any],
                 subshell_id: str | None = None) -> list[dict[str, Any]]:
        msg_id = self.send("comm_msg", {"comm_id": comm_id, "data": data}, subshell_id)
        return self.until_idle(msg_id)

    def close(self) -> None:
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)


@pytest.fixture
def page(installed: Path) -> Iterator[Frontend]:
    frontend = Frontend()
    yield frontend
    frontend.close()


def test_the_install_command_of_the_docstring_writes_the_kernelspec(installed: Path) -> None:
    spec = json.loads((installed / "kernel.json").read_text())
    assert spec["display_name"] == "Widgets"
    assert "widgets_kernel:WidgetsKernel" in spec["argv"]


def test_a_slider_moved_in_the_page_reaches_the_kernel(page: Frontend) -> None:
    assert page.stdout("value") == "no slider yet\n"
    model_id, state = page.show("slider")
    assert (state["_model_name"], state["value"], state["max"]) == ("IntSliderModel", 0, 100)
    # The page moves the slider: the widget manager sends the model's new state.
    back = page.comm_msg(model_id, {"method": "update", "state": {"value": 7},
                                    "buffer_paths": []})
    kinds = [m["msg_type"] for m in back]
    assert kinds[0] == "status" and kinds[-1] == "status"
    echoes = [m["content"]["data"] for m in back if m["msg_type"] == "comm_msg"]
    # ipywidgets 8 echoes a frontend's update, so that other views of the model follow.
    assert echoes == [{"method": "echo_update", "state": {"value": 7}, "buffer_paths": []}]
    assert page.stdout("value") == "7\n"


def test_the_kernel_counts_button_clicks_sent_over_a_subshell(page: Frontend) -> None:
    model_id, state = page.show("button")
    assert (state["_model_name"], state["description"]) == ("ButtonModel", "Click me")
    assert page.stdout("clicks") == "0\n"
    page.comm_msg(model_id, {"method": "custom", "content": {"event": "click"}})
    assert page.stdout("clicks") == "1\n"
    # JupyterLab >= 4.4 sends widget traffic over a subshell of its own.
    create = page.kc.session.msg("create_subshell_request", {})
    page.kc.control_channel.send(create)
    subshell_id = page.kc.get_control_msg(timeout=30)["content"]["subshell_id"]
    back = page.comm_msg(model_id, {"method": "custom", "content": {"event": "click"}},
                         subshell_id)
    assert all(m["parent_header"]["subshell_id"] == subshell_id for m in back)
    assert page.stdout("clicks") == "2\n"


def test_a_reloaded_page_gets_every_widgets_state_back(page: Frontend) -> None:
    slider_id, _ = page.show("slider")
    button_id, _ = page.show("button")
    page.comm_msg(slider_id, {"method": "update", "state": {"value": 42}, "buffer_paths": []})
    # A reload: the new widget manager opens the control comm and asks for all states.
    opened = page.send("comm_open", {"comm_id": "control-1",
                                     "target_name": "jupyter.widget.control", "data": {}},
                       metadata={"version": "1.0.0"})
    assert not [m for m in page.until_idle(opened) if m["msg_type"] == "comm_close"]
    back = page.comm_msg("control-1", {"method": "request_states"})
    answers = [m["content"]["data"] for m in back if m["msg_type"] == "comm_msg"]
    assert [a["method"] for a in answers] == ["update_states"]
    states = answers[0]["states"]
    assert {slider_id, button_id} <= set(states)
    assert states[slider_id]["model_name"] == "IntSliderModel"
    assert states[slider_id]["state"]["value"] == 42
    assert states[button_id]["model_name"] == "ButtonModel"
    # comm_info, which the page also asks, lists the same widgets.
    msg_id = page.send("comm_info_request", {"target_name": "jupyter.widget"})
    reply = page.kc.get_shell_msg(timeout=30)
    assert reply["parent_header"]["msg_id"] == msg_id
    assert {slider_id, button_id} <= set(reply["content"]["comms"])


def test_an_unknown_command_is_an_error_and_the_kernel_goes_on(page: Frontend) -> None:
    reply, msgs = page.run("sliderr")
    assert (reply["status"], reply["ename"]) == ("error", "UnknownCommand")
    assert [m["content"]["ename"] for m in msgs if m["msg_type"] == "error"] == ["UnknownCommand"]
    assert page.stdout("clicks") == "0\n"
