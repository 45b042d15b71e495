"""Kernel.display: rich output for Python objects without IPython, widgets included."""

from __future__ import annotations

from typing import Any

from kernelkit.kernel import mimebundle


class Rich:
    def _repr_html_(self) -> str:
        return "<b>rich</b>"

    def _repr_png_(self) -> bytes:
        return b"\x89PNG"

    def _repr_markdown_(self) -> tuple[str, dict[str, Any]]:
        return "*md*", {"isolated": True}

    def _repr_latex_(self) -> None:
        return None  # "not this time": left out

    def __repr__(self) -> str:
        return "Rich()"


class Bundled:
    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> Any:
        return {"application/x-thing": {"a": 1}, "text/plain": "thing"}, {"x": 1}

    def _repr_html_(self) -> str:
        return "<i>also</i>"


def test_repr_methods_make_the_bundle() -> None:
    data, metadata = mimebundle(Rich())
    assert data == {"text/html": "<b>rich</b>", "image/png": "iVBORw==",
                    "text/markdown": "*md*", "text/plain": "Rich()"}
    assert metadata == {"text/markdown": {"isolated": True}}


def test_repr_mimebundle_comes_first_and_the_methods_fill_in() -> None:
    data, metadata = mimebundle(Bundled())
    assert data == {"application/x-thing": {"a": 1}, "text/plain": "thing",
                    "text/html": "<i>also</i>"}
    assert metadata == {"x": 1}


def test_an_ipywidget_shows_as_a_widget_view(start_kernel: Any) -> None:
    k = start_kernel("kk-python")
    reply, msgs = k.execute("import ipywidgets as w\ns = w.IntSlider(value=3)\ndisplay(s)\n"
                            "print(s.model_id)")
    assert reply["content"]["status"] == "ok", reply["content"]
    model_id = "".join(m["content"]["text"] for m in msgs if m["msg_type"] == "stream").strip()
    opens = [m for m in msgs if m["msg_type"] == "comm_open"]
    assert model_id in {m["content"]["comm_id"] for m in opens}
    (shown,) = [m for m in msgs if m["msg_type"] == "display_data"]
    view = shown["content"]["data"]["application/vnd.jupyter.widget-view+json"]
    assert view["model_id"] == model_id
    assert "IntSlider" in shown["content"]["data"]["text/plain"]
