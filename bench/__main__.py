"""`python -m bench [NAME...]`: run every `*_bench.py` module's `main()` (or only the named ones)."""
from __future__ import annotations

import importlib
import sys
from pathlib import Path


def discover() -> list[str]:
    return sorted(path.stem for path in Path(__file__).resolve().parent.glob("*_bench.py"))


def main(argv: list[str] | None = None) -> int:
    wanted = argv if argv is not None else sys.argv[1:]
    names = [n for n in discover() if not wanted or n in wanted or n.removesuffix("_bench") in wanted]
    if not names:
        print(f"no bench matches {wanted}; available: {', '.join(discover())}", file=sys.stderr)
        return 2
    for name in names:
        print(f"== {name}", flush=True)
        importlib.import_module(f"bench.{name}").main()
    return 0


if __name__ == "__main__":
    sys.exit(main())
