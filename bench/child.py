"""Entry point of a measuring subprocess: `python -m bench.child module:function '<json kwargs>'`.

Prints one line `BENCH_RESULT {json}` with the function's result (which holds "seconds" for the measured
step) and the process's peak RSS in KiB (ru_maxrss: imports and input loading are included).
"""

from __future__ import annotations

import importlib
import json
import resource
import sys

from bench.measure import RESULT_MARK


def main(argv: list[str]) -> int:
    task, raw = argv[0], argv[1] if len(argv) > 1 else "{}"
    module_name, _, func_name = task.partition(":")
    func = getattr(importlib.import_module(f"bench.{module_name}"), func_name)
    result = func(**json.loads(raw))
    result["peak_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    sys.stdout.flush()
    print(RESULT_MARK + json.dumps(result, default=str), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
