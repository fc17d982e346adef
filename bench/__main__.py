"""`python -m bench [NAME...] [--OPTION ...]`: run every `*_bench.py` module's `main()` (or only the named ones);
options, from the first argument starting with '-', go to the one named bench (`python -m bench worker --steps 4`).
The benches in ON_REQUEST run only when named (`python -m bench gpu --tiny`), never in a plain `make bench`."""
from __future__ import annotations

import importlib
import sys
from pathlib import Path

# name -> module of the benches that run only when named: the GPU check needs a CUDA GPU (or `--tiny`)
ON_REQUEST = {"gpu": "gpu_check"}


def discover() -> list[str]:
    """The names of the bench modules (`*_bench.py` next to this file), sorted."""
    return sorted(path.stem for path in Path(__file__).resolve().parent.glob("*_bench.py"))


def main(argv: list[str] | None = None) -> int:
    """Run the benches `argv` names (all when none), passing its options on; 2 when that cannot be done."""
    given = argv if argv is not None else sys.argv[1:]
    first_option = next((i for i, arg in enumerate(given) if arg.startswith("-")), len(given))
    wanted, options = given[:first_option], given[first_option:]
    names = [n for n in discover() if not wanted or n in wanted or n.removesuffix("_bench") in wanted]
    names += [module for name, module in ON_REQUEST.items() if name in wanted or module in wanted]
    available = ", ".join([*discover(), *ON_REQUEST])
    if not names:
        print(f"no bench matches {wanted}; available: {available}", file=sys.stderr)
        return 2
    if options and len(names) != 1:
        print(f"options {options} go to one bench: name it (available: {available})", file=sys.stderr)
        return 2
    status = 0
    for name in names:
        print(f"== {name}", flush=True)
        bench = importlib.import_module(f"bench.{name}")
        status = max(status, (bench.main(options) if options else bench.main()) or 0)
    return status


if __name__ == "__main__":
    sys.exit(main())
