"""The checks, a module per group; importing this package registers them all.

Which check runs when is ``registry.ORDER``'s business, not the import order here.
"""

from . import (
    comms,
    control,
    execute,
    heartbeat,
    interrupt,
    introspection,
    kernel_info,
    lifecycle,
    security,
    stdin,
    subshells,
)

__all__ = ["comms", "control", "execute", "heartbeat", "interrupt", "introspection",
           "kernel_info", "lifecycle", "security", "stdin", "subshells"]
