"""A kernelkit Python kernel with real Jupyter widgets (ipywidgets 8), two-way.

Each cell is one command:

- ``slider``: show an ``IntSlider`` (0 to 100); moving it in the page reaches the kernel.
- ``button``: show a ``Button``; the kernel counts its clicks.
- ``value``: print the value the kernel has for the last slider shown.
- ``clicks``: print how many clicks the kernel has received (all buttons together).

Anything else is an ``UnknownCommand`` error. It needs ``pip install kernelkit ipywidgets``
in the kernel's environment. For the page to draw the widgets, JupyterLab also needs
``jupyterlab_widgets``. Install the kernel from this folder; the kernelspec remembers the
folder, so notebooks anywhere can use it::

    cd examples/python && kernelkit install widgets_kernel:WidgetsKernel

That writes the kernelspec ``widgetskernel``, shown as "Widgets". Add
``--name N --display-name D`` to change its name or title, and ``--user`` or
``--sys-prefix`` to choose where it goes.

Why this is enough: ipywidgets opens its comms through the ``comm`` package, and
kernelkit hands that package the kernel's own ``comm_manager``. ipywidgets registers its
``jupyter.widget`` targets only under IPython; kernelkit registers them for it, so a
reloaded page still gets the widgets' states back. Showing a widget is ``self.display(widget)``:
``display_data`` with the bundle from its ``_repr_mimebundle_()``, as IPython's
``display()`` would make it: ``text/plain`` and ``application/vnd.jupyter.widget-view+json``,
which names the widget's model (its comm id).

Comm callbacks such as a button's click can run on a subshell thread while a cell runs
(JupyterLab sends widget traffic over a subshell), so the click count has a lock.
"""

from __future__ import annotations

import threading
from typing import Any

import ipywidgets

from kernelkit import Kernel


class WidgetsKernel(Kernel):
    implementation = "Widgets"
    implementation_version = "1.0"
    language = "widgets"
    language_info = {"name": "widgets", "mimetype": "text/plain", "file_extension": ".txt"}
    banner = "Widgets kernel: slider, button, value, clicks"

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.slider: ipywidgets.IntSlider | None = None
        self.buttons: list[ipywidgets.Button] = []  # kept: the page may click them later
        self.clicks = 0
        self._clicks_lock = threading.Lock()
        self._silent = False  # the running cell's; hooks run one at a time

    def do_execute(
        self,
        code: str,
        silent: bool,
        store_history: bool = True,
        user_expressions: dict[str, Any] | None = None,
        allow_stdin: bool = False,
    ) -> dict[str, Any]:
        self._silent = silent
        command = code.strip()
        if command == "slider":
            self.slider = ipywidgets.IntSlider(value=0, min=0, max=100, description="value")
            self._show(self.slider)
        elif command == "button":
            button = ipywidgets.Button(description="Click me")
            button.on_click(self._clicked)
            self.buttons.append(button)
            self._show(button)
        elif command == "value":
            self._print("no slider yet" if self.slider is None else str(self.slider.value))
        elif command == "clicks":
            with self._clicks_lock:
                clicks = self.clicks
            self._print(str(clicks))
        else:
            return self._error("UnknownCommand",
                               f"{command!r}: the commands are slider, button, value, clicks")
        return {"status": "ok", "execution_count": self.execution_count, "payload": [],
                "user_expressions": {}}

    def _clicked(self, button: ipywidgets.Button) -> None:
        with self._clicks_lock:
            self.clicks += 1

    # Output of the running cell; a silent one publishes nothing but its status.

    def _show(self, widget: ipywidgets.Widget) -> None:
        if not self._silent:
            self.display(widget)  # display_data from its _repr_mimebundle_(), as IPython does

    def _print(self, text: str) -> None:
        if not self._silent:
            self.send_response(self.iopub_socket, "stream",
                               {"name": "stdout", "text": text + "\n"})

    def _error(self, ename: str, evalue: str) -> dict[str, Any]:
        error = {"ename": ename, "evalue": evalue, "traceback": [f"{ename}: {evalue}"]}
        if not self._silent:
            self.send_response(self.iopub_socket, "error", error)
        return {"status": "error", **error}
