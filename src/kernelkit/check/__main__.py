"""``python -m kernelkit.check KERNEL_NAME``: the same as ``kernelkit check``."""

import sys

from .command import main

sys.exit(main())
