"""Jupyter widgets from a Deno kernel: sdk/js/widgets.js through examples/deno/widgets.ts, on
real Deno behind the real host, driven by jupyter_client as JupyterLab's widget manager
drives a kernel (widget protocol 2.1). The states are checked against the ones real
ipywidgets 8 and anywidget make for the same widgets.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Collection
from typing import Any

import pytest
from widget_frontend import (
    VIEW_MIMETYPE,
    WIDGET_PROTOCOL_VERSION,
    Frontend,
    displayed_models,
    resolve,
    widget_opens,
)

from conftest import DENO, ROOT

Msg = dict[str, Any]


@pytest.fixture
def fe(start_kernel: Any) -> Frontend:
    return Frontend(start_kernel("kk-js-widgets").kc)


def show(fe: Frontend, command: str) -> tuple[str, dict[str, Msg], list[Msg]]:
    """Run a command that displays a widget: (its model id, the states opened, the messages)."""
    reply, msgs = fe.run(command)
    assert reply["content"]["status"] == "ok", reply["content"]
    (model_id,) = displayed_models(msgs)
    return model_id, widget_opens(msgs), msgs


def comm_data(msgs: list[Msg], comm_id: str) -> list[Msg]:
    return [m["content"]["data"] for m in msgs
            if m["msg_type"] == "comm_msg" and m["content"]["comm_id"] == comm_id]


def ipywidgets_state(widget: Any) -> Msg:
    """What ipywidgets 8 sends for a widget made in this process (its comm goes nowhere)."""
    return json.loads(json.dumps(widget.get_state()))  # type: ignore[no-any-return]


def assert_same_shape(ours: Msg, theirs: Msg, differ: Collection[str] = ()) -> None:
    """The same keys, and the same values except model references and the given keys."""
    assert sorted(ours) == sorted(theirs)
    for key, value in theirs.items():
        if key in differ or (isinstance(value, str) and value.startswith("IPY_MODEL_")):
            continue
        assert ours[key] == value, key


def test_kernel_info_offers_subshells_and_lists_the_commands(fe: Frontend) -> None:
    info = fe.reply(fe.send("kernel_info_request"))["content"]
    assert "kernel subshells" in info["supported_features"]
    for command in ("slider", "value", "set N", "button", "clicks", "counter", "count", "text",
                    "typed", "output", "help"):
        assert command in info["banner"], command


@pytest.mark.parametrize(("command", "make", "style"), [
    ("slider", "IntSlider(value=5, min=0, max=10, description='n')", "SliderStyleModel"),
    ("button", "Button(description='Click me', tooltip='counted by the kernel')",
     "ButtonStyleModel"),
    ("text", "Text(description='say', placeholder='type here')", "TextStyleModel"),
    ("output", "Output(layout={'border_top': '1px solid #ccc', 'min_height': '2em'})", None),
])
def test_states_have_the_shape_ipywidgets_8_sends(fe: Frontend, command: str, make: str,
                                                  style: str | None) -> None:
    import ipywidgets

    model_id, opened, msgs = show(fe, command)
    theirs = ipywidgets_state(eval(make, vars(ipywidgets)))
    ours = opened[model_id]
    assert_same_shape(ours, theirs)
    assert_same_shape(resolve(ours, opened, "layout"), ipywidgets_state(
        eval(make, vars(ipywidgets)).layout))
    if style:
        ours_style = resolve(ours, opened, "style")
        assert ours_style["_model_name"] == style
        assert_same_shape(ours_style, ipywidgets_state(eval(make, vars(ipywidgets)).style))
    # Each model is opened (protocol 2.1) before the view that shows it.
    kinds = [m["msg_type"] for m in msgs]
    assert kinds.index("display_data") > max(i for i, k in enumerate(kinds) if k == "comm_open")
    for m in msgs:
        if m["msg_type"] == "comm_open":
            assert m["metadata"] == {"version": WIDGET_PROTOCOL_VERSION}
            assert m["content"]["data"]["buffer_paths"] == []
    (shown,) = [m for m in msgs if m["msg_type"] == "display_data"]
    assert shown["content"]["data"][VIEW_MIMETYPE] == {"version_major": 2, "version_minor": 0,
                                                       "model_id": model_id}
    assert shown["content"]["data"]["text/plain"].startswith(make.split("(")[0] + "(")


def test_the_anywidget_has_the_module_version_anywidget_sends(fe: Frontend) -> None:
    import anywidget
    import traitlets

    model_id, opened, _ = show(fe, "counter")
    ours = opened[model_id]

    class Counter(anywidget.AnyWidget):
        _esm = ours["_esm"]
        _css = ours["_css"]
        count = traitlets.Int(0).tag(sync=True)

    theirs = ipywidgets_state(Counter())
    assert_same_shape(ours, theirs, differ={"_anywidget_id"})
    assert ours["_model_module_version"] == theirs["_model_module_version"]  # "~0.11.*"
    assert ours["_model_name"] == "AnyModel" and ours["_view_name"] == "AnyView"
    assert "export default" in ours["_esm"] and "save_changes" in ours["_esm"]


def test_a_frontend_update_is_echoed_and_is_what_the_next_cell_sees(fe: Frontend) -> None:
    slider, _, _ = show(fe, "slider")
    assert fe.stdout("value") == "5\n"
    moved = fe.widget_update(slider, {"value": 7})
    msgs = fe.until_idle(moved)
    (echo,) = [m for m in msgs if m["msg_type"] == "comm_msg"]
    assert echo["content"]["data"] == {"method": "echo_update", "state": {"value": 7},
                                       "buffer_paths": []}
    # The parent is the frontend's message: how ipywidgets 8's frontend matches its echo.
    assert echo["parent_header"]["msg_id"] == moved
    assert fe.stdout("value") == "7\n"
    # Out of range: echoed as sent, then the kernel's clamped value comes back as an update.
    msgs = fe.until_idle(fe.widget_update(slider, {"value": 50}))
    assert comm_data(msgs, slider) == [
        {"method": "echo_update", "state": {"value": 50}, "buffer_paths": []},
        {"method": "update", "state": {"value": 10}, "buffer_paths": []}]
    assert fe.stdout("value") == "10\n"
    # Keys the model does not have are not taken (nor echoed).
    msgs = fe.until_idle(fe.widget_update(slider, {"bogus": 1}))
    assert comm_data(msgs, slider) == []


def test_a_value_set_by_the_kernel_reaches_the_frontend(fe: Frontend) -> None:
    slider, _, _ = show(fe, "slider")
    _, msgs = fe.run("set 3")
    assert comm_data(msgs, slider) == [{"method": "update", "state": {"value": 3},
                                        "buffer_paths": []}]
    assert fe.stdout("value") == "3\n"
    _, msgs = fe.run("set 3")  # no change, no message
    assert comm_data(msgs, slider) == []


def test_request_state_answers_the_whole_state(fe: Frontend) -> None:
    slider, opened, _ = show(fe, "slider")
    fe.until_idle(fe.widget_update(slider, {"value": 8}))
    msgs = fe.until_idle(fe.request_state(slider))
    (answer,) = comm_data(msgs, slider)
    assert answer["method"] == "update" and answer["buffer_paths"] == []
    assert answer["state"] == {**opened[slider], "value": 8}


def test_button_clicks_are_counted_and_logged_in_an_output_widget(fe: Frontend) -> None:
    button, _, _ = show(fe, "button")
    out, _, _ = show(fe, "output")
    for n in (1, 2):
        msgs = fe.until_idle(fe.widget_custom(button, {"event": "click"}))
        assert comm_data(msgs, button) == []  # a click changes no state of the button
        (update,) = comm_data(msgs, out)
        assert update["method"] == "update"
        assert update["state"]["outputs"][-1] == {"output_type": "stream", "name": "stdout",
                                                  "text": f"click {n}\n"}
    assert fe.stdout("clicks") == "2\n"


def test_a_text_field_takes_what_is_typed(fe: Frontend) -> None:
    text, _, _ = show(fe, "text")
    fe.until_idle(fe.widget_update(text, {"value": "héllo"}))
    assert fe.stdout("typed") == '"héllo"\n'


def test_the_anywidget_count_syncs_back(fe: Frontend) -> None:
    counter, _, _ = show(fe, "counter")
    assert fe.stdout("count") == "0\n"
    msgs = fe.until_idle(fe.widget_update(counter, {"count": 3}))  # what save_changes() sends
    assert comm_data(msgs, counter) == [{"method": "echo_update", "state": {"count": 3},
                                         "buffer_paths": []}]
    assert fe.stdout("count") == "3\n"
    msgs = fe.until_idle(fe.request_state(counter))
    assert comm_data(msgs, counter)[0]["state"]["count"] == 3


def test_a_reloaded_page_gets_every_widget_back(fe: Frontend) -> None:
    slider, opened, _ = show(fe, "slider")
    button, more, _ = show(fe, "button")
    counter, even_more, _ = show(fe, "counter")
    opened.update(more)
    opened.update(even_more)
    fe.until_idle(fe.widget_update(slider, {"value": 9}))
    data, buffers = fe.request_states()
    assert buffers == [] and data["buffer_paths"] == []
    states = data["states"]
    assert set(states) == set(opened)  # every live widget: layouts and styles too
    for model_id, state in opened.items():
        entry = states[model_id]
        assert entry["model_name"] == state["_model_name"]
        assert entry["model_module"] == state["_model_module"]
        assert entry["model_module_version"] == state["_model_module_version"]
        expected = {**state, "value": 9} if model_id == slider else state
        assert entry["state"] == expected, model_id
    assert states[counter]["model_module"] == "anywidget"
    # The page then talks to the widgets it got back, on their old comm ids.
    fe.until_idle(fe.widget_custom(button, {"event": "click"}))
    assert fe.stdout("clicks") == "1\n"


def test_bad_widget_messages_are_logged_and_the_kernel_lives(capfd: Any,
                                                             start_kernel: Any) -> None:
    fe = Frontend(start_kernel("kk-js-widgets").kc)
    slider, _, _ = show(fe, "slider")
    fe.until_idle(fe.comm_msg(slider, {"method": "bogus"}))
    fe.until_idle(fe.widget_update(slider, {"value": "seven"}))
    err = capfd.readouterr().err
    assert 'unknown widget message method "bogus"' in err
    assert "IntSlider value must be an integer" in err
    assert fe.stdout("value") == "5\n"
    reply, _ = fe.run("nonsense")
    assert reply["content"]["ename"] == "SyntaxError"


def test_buffers_are_taken_out_and_put_back_as_ipywidgets_does() -> None:
    """widgets.js's removeBuffers/putBuffers against ipywidgets' own, on one state."""
    from ipywidgets.widgets.widget import _put_buffers, _remove_buffers

    script = f"""
import {{ removeBuffers, putBuffers }} from "{(ROOT / 'src/kernelkit/sdk/js/widgets.js').as_uri()}";
const b = (...xs) => new Uint8Array(xs);
const state = {{
  a: b(1), l: [1, b(2), {{ z: b(3) }}], n: {{ k: new DataView(b(4).buffer) }}, s: "x",
}};
const out = removeBuffers(state);
const bytes = out.buffers.map((x) => [...new Uint8Array(x.buffer, x.byteOffset, x.byteLength)]);
const back = putBuffers(structuredClone(out.state), out.buffer_paths, bytes);
console.log(JSON.stringify({{ state: out.state, paths: out.buffer_paths, back }}));
Deno.exit(0);
"""
    done = subprocess.run([DENO, "eval", script], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    ours = json.loads(done.stdout)
    state = {"a": b"\x01", "l": [1, b"\x02", {"z": b"\x03"}], "n": {"k": b"\x04"}, "s": "x"}
    theirs, paths, buffers = _remove_buffers(state)
    assert ours["state"] == theirs
    assert ours["paths"] == paths
    back = json.loads(json.dumps(theirs))
    _put_buffers(back, paths, [list(x) for x in buffers])
    assert ours["back"] == back

