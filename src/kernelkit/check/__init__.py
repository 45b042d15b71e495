"""``kernelkit check``: a protocol conformance suite for any installed Jupyter kernel.

A client of the kernel, like Jupyter itself: it launches the kernelspec with
jupyter_client and knows nothing of how the kernel is written. Importing this
package imports neither jupyter_client nor rich; ``command`` does, when it runs.

* ``schema``  — the messaging spec as field tables, ``validate()`` for one message
* ``client``  — raw pyzmq sockets that validate and sort every message received
* ``samples`` — language-specific code samples: built in, or from a TOML file
* ``registry`` — what a check and a result are, and ``ORDER``, the order checks run in
* ``harness`` — one kernel under test, and the helpers several groups share
* ``groups``  — the checks, a module per group (``groups/execute.py``, …)
* ``runner``  — ``select()`` checks and ``run()`` one kernel through them
* ``report``  — progress, the results table, the summary line and JSON
* ``command`` — ``add_parser(subparsers)``, ``run(args)`` and ``main(argv)``
"""
