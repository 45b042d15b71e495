"""Kernels that ship with kernelkit, by the name the CLI knows them by."""

BUILTIN = {"echo": "kernelkit.kernels.echo:EchoKernel"}
