"""Subshells (JEP 91) in the TypeScript kernel: the kernel claims them, and every shell's
cells run in the one worker, sharing its variables and interleaving as async code does.

What a user gets: a subshell console's cell, or a widget's message from JupyterLab (which
sends comm traffic on a subshell when a kernel claims them), runs while the notebook's cell
awaits; a synchronous loop holds the worker's only thread, so they wait for it, and an
interrupt (for the whole kernel) ends every running cell. Real Deno behind the real host,
driven by jupyter_client.
"""

from __future__ import annotations

import queue
from typing import Any

import pytest
from widget_frontend import Frontend, displayed_models, stdout_of

from test_typescript import _no_stray_backend, installed, prepared, scratch  # noqa: F401

Msg = dict[str, Any]


@pytest.fixture
def started(installed: list[str], start_kernel: Any) -> Any:  # noqa: F811
    return start_kernel("kk-typescript")


@pytest.fixture
def fe(started: Any) -> Frontend:
    return Frontend(started.kc)


def started_marker(fe: Frontend, msg_id: str) -> None:
    fe.wait_for(lambda m: m["parent_header"].get("msg_id") == msg_id
                and m["msg_type"] == "stream" and "started" in m["content"]["text"])


def test_the_kernel_claims_subshells(fe: Frontend) -> None:
    info = fe.reply(fe.send("kernel_info_request"))["content"]
    assert "kernel subshells" in info["supported_features"]


def test_a_subshell_cell_runs_while_the_main_cell_awaits(fe: Frontend) -> None:
    assert fe.stdout("let shared = 1") == ""
    sub = fe.create_subshell()
    main = fe.execute("console.log('started');\n"
                      "await new Promise((r) => setTimeout(r, 1500));\n"
                      "console.log('main sees', shared)")
    started_marker(fe, main)
    side = fe.execute("shared = 2; console.log('subshell ran')", subshell_id=sub)
    # The subshell's cell is answered first, while the main one still awaits.
    assert fe.first_reply(main, side) == side
    side_reply = fe.reply(side)
    assert side_reply["content"]["status"] == "ok"
    assert side_reply["parent_header"]["subshell_id"] == sub
    assert stdout_of(fe.until_idle(side)) == "subshell ran\n"
    # One namespace: the main cell, resumed, sees what the subshell's cell set, and each
    # cell's output is its own request's.
    assert fe.reply(main)["content"]["status"] == "ok"
    assert stdout_of(fe.until_idle(main)) == "started\nmain sees 2\n"
    assert fe.stdout("console.log(shared)") == "2\n"


def test_widget_messages_on_a_subshell_reach_a_cell_that_awaits(fe: Frontend) -> None:
    reply, msgs = fe.run('import { IntSlider } from "kernelkit:widgets";\n'
                         "const s = new IntSlider({ value: 3 });\ns")
    assert reply["content"]["status"] == "ok"
    (model_id,) = displayed_models(msgs)
    sub = fe.create_subshell()
    main = fe.execute("console.log('started');\n"
                      "await new Promise((r) => setTimeout(r, 1500));\n"
                      "console.log('value', s.value)")
    started_marker(fe, main)
    moved = fe.widget_update(model_id, {"value": 8}, subshell_id=sub)
    echoes = [m for m in fe.until_idle(moved) if m["msg_type"] == "comm_msg"]
    assert echoes and echoes[0]["content"]["data"]["method"] == "echo_update"
    assert echoes[0]["parent_header"]["msg_id"] == moved
    with pytest.raises(queue.Empty):  # the main cell still awaits
        fe.reply(main, timeout=0.05)
    assert fe.reply(main)["content"]["status"] == "ok"
    assert stdout_of(fe.until_idle(main)) == "started\nvalue 8\n"


def test_a_synchronous_loop_holds_a_subshell_cell_until_interrupted(started: Any,
                                                                    fe: Frontend) -> None:
    assert fe.stdout("let kept = 7") == ""
    sub = fe.create_subshell()
    main = fe.execute("console.log('started');\nwhile (true) {}")
    started_marker(fe, main)
    side = fe.execute("console.log('subshell', kept)", subshell_id=sub)
    # The worker's one thread is in the loop: nothing answers the subshell's cell yet.
    with pytest.raises(queue.Empty):
        fe.first_reply(main, side, timeout=1.0)
    started.km.interrupt_kernel()
    main_reply = fe.reply(main)["content"]
    assert main_reply["status"] == "error" and main_reply["ename"] == "KeyboardInterrupt"
    # Interrupting is for the whole kernel: the subshell's cell, which had not started,
    # is answered once, ran or interrupted; either way the session and its variables stay.
    side_reply = fe.reply(side)["content"]
    assert side_reply["status"] == "ok" or side_reply["ename"] == "KeyboardInterrupt"
    if side_reply["status"] == "ok":
        assert stdout_of(fe.until_idle(side)) == "subshell 7\n"
    assert fe.stdout("console.log(kept)", subshell_id=sub) == "7\n"
    assert fe.stdout("console.log(kept + 1)") == "8\n"
