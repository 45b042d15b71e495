"""End-to-end tests: kernelkit kernels driven through JupyterLab in headless Chromium.

A package, so that its conftest is imported as ``e2e.conftest`` and leaves the top-level
``conftest`` module (tests/conftest.py, imported by other test modules) in place.
"""
