"""``python -m tests.reliability``: run the scenarios, print their figures, maybe write the docs."""

from __future__ import annotations

import argparse
import sys

from . import SCENARIOS, run
from . import __doc__ as PACKAGE_DOC
from .report import DOCS, ROOT, write_docs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.reliability", description=PACKAGE_DOC,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scenarios", nargs="*", choices=[[], *SCENARIOS], metavar="SCENARIO",
                        help=f"some of: {', '.join(SCENARIOS)} (default: all)")
    parser.add_argument("--quick", action="store_true", help="the test suite's sizes")
    parser.add_argument("--write-docs", action="store_true",
                        help=f"write the figures into {DOCS.relative_to(ROOT)}")
    args = parser.parse_args(argv)
    names = args.scenarios or list(SCENARIOS)
    results = run(names, "quick" if args.quick else "full")
    if args.write_docs:
        shown = " ".join(["python -m tests.reliability", *(["--quick"] if args.quick else []),
                          *args.scenarios])
        write_docs(results, shown)
    failed = [r.name for r in results if r.failures]
    print("all held" if not failed else f"FAILED: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
