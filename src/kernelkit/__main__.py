"""``python -m kernelkit``: the same as the ``kernelkit`` command."""

from .cli import main

raise SystemExit(main())
