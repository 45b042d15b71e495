"""Kernels whose logic runs in another process, in any language, over stdio JSON-RPC.

The host (this package) speaks Jupyter through kernelkit's engine; the backend
speaks the small protocol in docs/bridge-protocol.md on its stdin and stdout.
"""

from .jsonrpc import BRIDGE_PROTOCOL_VERSION

__all__ = ["BRIDGE_PROTOCOL_VERSION"]
