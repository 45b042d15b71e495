"""Widgets and comms in the TypeScript kernel: cells in the worker use sdk/js/widgets.js
(``import … from "kernelkit:widgets"``) over the worker's comms, which the supervisor carries
through the SDK's comms; real Deno behind the real host, driven by jupyter_client as
JupyterLab's widget manager drives a kernel (widget protocol 2.1).
"""

from __future__ import annotations

from typing import Any

import pytest
from widget_frontend import VIEW_MIMETYPE, Frontend, displayed_models, stdout_of, widget_opens

from test_typescript import _no_stray_backend, installed, prepared, scratch  # noqa: F401

Msg = dict[str, Any]


@pytest.fixture
def fe(installed: list[str], start_kernel: Any) -> Frontend:  # noqa: F811
    return Frontend(start_kernel("kk-typescript").kc)


def ok(fe: Frontend, code: str) -> list[Msg]:
    reply, msgs = fe.run(code)
    assert reply["content"]["status"] == "ok", reply["content"]
    return list(msgs)


def shown(msgs: list[Msg]) -> str:
    """The one widget view these messages displayed: its model id."""
    (model_id,) = displayed_models(msgs)
    return str(model_id)


def comm_data(msgs: list[Msg], comm_id: str) -> list[Msg]:
    return [m["content"]["data"] for m in msgs
            if m["msg_type"] == "comm_msg" and m["content"]["comm_id"] == comm_id]


SLIDER = ('import { IntSlider, Button } from "kernelkit:widgets";\n'
          'const s = new IntSlider({ value: 3, max: 10, description: "n" });\n'
          "s")


def test_a_slider_moved_in_the_page_is_read_by_a_later_cell(fe: Frontend) -> None:
    msgs = ok(fe, SLIDER)
    model_id = shown(msgs)
    state = widget_opens(msgs)[model_id]
    assert state["_model_name"] == "IntSliderModel"
    assert (state["value"], state["max"], state["description"]) == (3, 10, "n")
    opened = [m for m in msgs if m["msg_type"] == "comm_open"
              and m["content"]["comm_id"] == model_id]
    assert opened[0]["metadata"]["version"] == "2.1.0"
    # The model is opened before its view is displayed.
    kinds = [m["msg_type"] for m in msgs]
    assert kinds.index("comm_open") < kinds.index("execute_result")
    view = next(m for m in msgs if m["msg_type"] == "execute_result")["content"]["data"]
    assert view[VIEW_MIMETYPE]["model_id"] == model_id

    ok(fe, 's.observe("value", (c) => console.log(`moved ${c.old} -> ${c.new}`))')
    answer = fe.until_idle(fe.widget_update(model_id, {"value": 8}))
    echoes = comm_data(answer, model_id)
    assert echoes[0] == {"method": "echo_update", "state": {"value": 8}, "buffer_paths": []}
    # The observer ran in the worker, as the comm message's output (not a cell's).
    assert stdout_of(answer) == "moved 3 -> 8\n"
    assert fe.stdout("console.log(s.value)") == "8\n"

    # Out of range: clamped, and the page gets the kernel's value back.
    answer = fe.until_idle(fe.widget_update(model_id, {"value": 99}))
    assert {"method": "update", "state": {"value": 10}, "buffer_paths": []} in comm_data(
        answer, model_id)
    assert fe.stdout("console.log(s.value)") == "10\n"


def test_code_setting_a_value_sends_an_update(fe: Frontend) -> None:
    model_id = shown(ok(fe, SLIDER))
    msgs = ok(fe, "s.value = 7")
    assert comm_data(msgs, model_id) == [
        {"method": "update", "state": {"value": 7}, "buffer_paths": []}]
    assert comm_data(ok(fe, "s.value = 7"), model_id) == []  # unchanged: nothing sent
    update = next(m for m in msgs if m["msg_type"] == "comm_msg")
    assert update["parent_header"]["msg_type"] == "execute_request"


def test_button_clicks_are_counted_in_the_worker(fe: Frontend) -> None:
    msgs = ok(fe, 'import { Button } from "kernelkit:widgets";\n'
                  'let clicks = 0;\nconst b = new Button({ description: "Click me" });\n'
                  "b.onClick(() => { clicks += 1; });\ndisplay(b)")
    model_id = shown(msgs)
    assert widget_opens(msgs)[model_id]["description"] == "Click me"
    for _ in range(3):
        fe.until_idle(fe.widget_custom(model_id, {"event": "click"}))
    assert fe.stdout("console.log(clicks)") == "3\n"
    # Without subshells a click waits for the running cell (the main shell is serial), then
    # its callback runs in the worker: the cell saw 3, the next one sees 4.
    running = fe.execute("await new Promise((r) => setTimeout(r, 500)); console.log(clicks)")
    click = fe.widget_custom(model_id, {"event": "click"})
    assert stdout_of(fe.until_idle(running)) == "3\n"
    fe.until_idle(click)
    assert fe.stdout("console.log(clicks)") == "4\n"


def test_request_states_lists_the_workers_widgets(fe: Frontend) -> None:
    slider = shown(ok(fe, SLIDER))
    ok(fe, "s.value = 6")
    data, buffers = fe.request_states()
    states = data["states"]
    assert slider in states
    assert states[slider]["model_name"] == "IntSliderModel"
    assert states[slider]["model_module"] == "@jupyter-widgets/controls"
    assert states[slider]["state"]["value"] == 6
    # Its layout and style are live models too, as a reloaded page needs them.
    layout = states[slider]["state"]["layout"]
    assert layout.startswith("IPY_MODEL_") and layout[len("IPY_MODEL_"):] in states
    assert buffers == []


def test_an_anywidget_round_trips_its_state(fe: Frontend) -> None:
    esm = ("export default { render({ model, el }) { el.textContent = "
           "`count is ${model.get('count')}`; } }")
    msgs = ok(fe, 'import { AnyWidget } from "kernelkit:widgets";\n'
                  f"const counter = new AnyWidget({{ esm: {esm!r}, state: {{ count: 0 }} }});\n"
                  "counter")
    model_id = shown(msgs)
    state = widget_opens(msgs)[model_id]
    assert (state["_model_module"], state["_model_name"]) == ("anywidget", "AnyModel")
    assert state["_esm"] == esm and state["count"] == 0
    answer = fe.until_idle(fe.widget_update(model_id, {"count": 2}))
    assert comm_data(answer, model_id)[0]["method"] == "echo_update"
    assert fe.stdout("console.log(counter.count)") == "2\n"
    assert comm_data(ok(fe, "counter.count = 5"), model_id) == [
        {"method": "update", "state": {"count": 5}, "buffer_paths": []}]
    data, _ = fe.request_states()
    assert data["states"][model_id]["state"]["count"] == 5


def test_comms_of_the_worker_and_deno_jupyter_broadcast(fe: Frontend) -> None:
    # A target of the cell's own, opened from the frontend, with buffers both ways.
    ok(fe, 'import { comms } from "kernelkit:comms";\n'
           'comms.registerTarget("echo", (comm, msg) => {\n'
           "  comm.onMsg((m) => comm.send({ echo: m.data, n: m.buffers.length },\n"
           "                              { buffers: m.buffers }));\n"
           "});")
    comm_id, opened = fe.comm_open("echo")
    fe.until_idle(opened)
    assert not fe.comm_messages(comm_id, "comm_close"), "the echo comm was refused"
    assert fe.comm_info("echo") == {comm_id: {"target_name": "echo"}}
    sent = fe.comm_msg(comm_id, {"x": 1}, buffers=[b"\x00\x01"])
    answer = fe.until_idle(sent)
    (echo,) = [m for m in answer if m["msg_type"] == "comm_msg"]
    assert echo["content"]["data"] == {"echo": {"x": 1}, "n": 1}
    assert [bytes(b) for b in echo["buffers"]] == [b"\x00\x01"]

    # Deno's kernel's way: broadcast comm_open / comm_msg / comm_close, Deno.jupyter.comm.
    msgs = ok(fe, 'let got = [];\n'
                  'await Deno.jupyter.broadcast("comm_open", { comm_id: "d1", target_name: "t",'
                  ' data: { a: 1 } }, { metadata: { version: "x" } });\n'
                  'Deno.jupyter.comm("d1", "t", (m) => got.push(m.data));\n'
                  'await Deno.jupyter.broadcast("comm_msg", { comm_id: "d1", data: { b: 2 } });')
    (open_msg,) = [m for m in msgs if m["msg_type"] == "comm_open"]
    assert open_msg["content"]["data"] == {"a": 1} and open_msg["metadata"] == {"version": "x"}
    assert comm_data(msgs, "d1") == [{"b": 2}]
    fe.until_idle(fe.comm_msg("d1", {"c": 3}))
    assert fe.stdout("console.log(JSON.stringify(got))") == '[{"c":3}]\n'
    msgs = ok(fe, 'await Deno.jupyter.broadcast("comm_close", { comm_id: "d1" })')
    assert [m["msg_type"] for m in msgs if m["content"].get("comm_id") == "d1"] == ["comm_close"]


def test_a_callback_that_throws_is_logged_and_the_widget_lives(fe: Frontend) -> None:
    msgs = ok(fe, 'import { Button } from "kernelkit:widgets";\nconst b = new Button();\n'
                  'let n = 0;\nb.onClick(() => { n++; throw new Error("boom"); });\nb')
    model_id = shown(msgs)
    for _ in range(2):  # (the host logs the error)
        fe.until_idle(fe.widget_custom(model_id, {"event": "click"}))
    assert fe.stdout("console.log(n)") == "2\n"
    assert model_id in fe.comm_info()


def test_a_worker_restart_closes_its_comms(fe: Frontend) -> None:
    model_id = shown(ok(fe, SLIDER))
    assert model_id in fe.comm_info()
    msg_id = fe.execute("new Function('while (true) {}')()")
    fe.wait_for(lambda m: m["msg_type"] == "status" and m["parent_header"].get("msg_id") == msg_id
                and m["content"]["execution_state"] == "busy")
    fe.send("interrupt_request", channel="control")
    assert fe.reply(msg_id, timeout=20)["content"]["ename"] == "KeyboardInterrupt"
    closed = fe.wait_for(lambda m: m["msg_type"] == "comm_close"
                         and m["content"]["comm_id"] == model_id, timeout=20)
    assert closed["content"]["comm_id"] == model_id
    _, msgs = fe.run("typeof s")
    assert "the TypeScript session was restarted" in "".join(
        m["content"]["text"] for m in msgs if m["msg_type"] == "stream")
    assert fe.comm_info() == {}
    # A reloaded page finds no widget (the control target is gone with the worker) ...
    control, opened = fe.comm_open("jupyter.widget.control")
    fe.until_idle(opened)
    assert fe.comm_messages(control, "comm_close")
    # ... and the new worker makes widgets again.
    model_id = shown(ok(fe, SLIDER))
    data, _ = fe.request_states()
    assert list(data["states"]) != [] and model_id in data["states"]


def test_comm_messages_keep_their_place_among_a_cells_output(fe: Frontend) -> None:
    # The worker sends comm messages by postMessage (their buffers are bytes) and output
    # through its shared ring (channel.ts); IOPub must still have them in the cell's order.
    msgs = ok(fe, 'import { comms } from "kernelkit:comms";\n'
                  'await new Promise((r) => setTimeout(r, 30));\n'  # (so "one" goes out at once)
                  'console.log("one");\n'
                  'const c = comms.open("order", { n: 1 }, { buffers: [new Uint8Array([1])] });\n'
                  'console.log("two");\n'
                  'c.send({ n: 2 }, { buffers: [new Uint8Array([2])] });\n'
                  'display(html`<b>three</b>`);\n'
                  'c.close({ n: 3 });\n'
                  'console.log("four");\n'
                  '"five"')
    seen = []
    for m in msgs:
        kind, content = m["msg_type"], m["content"]
        if kind == "stream":
            seen += [f"stream {line}" for line in content["text"].splitlines()]
        elif kind.startswith("comm_"):
            seen.append(f"{kind} {content['data'].get('n')}")
        elif kind in ("display_data", "execute_result"):
            seen.append(f"{kind} {next(iter(content['data'].values()))}")
    assert seen == ["stream one", "comm_open 1", "stream two", "comm_msg 2",
                    "display_data <b>three</b>", "comm_close 3", "stream four",
                    'execute_result "five"'], seen
