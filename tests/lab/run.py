"""Run one lab scenario: ``unshare -m -n python -m tests.lab.run SCENARIO [--variant V]``.

Builds the lab (tests/lab/netlab.py) in this process's private namespaces, runs the
scenario (tests/lab/scenarios.py), prints its result as one JSON line (the last line of
stdout), tears the lab down, and exits 0; on failure the JSON has ``error`` and the logs.
"""

from __future__ import annotations

import argparse
import json
import sys
import traceback

from tests.lab import reach_scenarios, scenarios
from tests.lab.netlab import VARIANTS, Lab, enter_private_run


def main() -> int:
    parser = argparse.ArgumentParser(prog="tests.lab.run")
    every = {**scenarios.SCENARIOS, **reach_scenarios.SCENARIOS}
    parser.add_argument("scenario", choices=sorted(every))
    parser.add_argument("--variant", choices=sorted(VARIANTS), default="both")
    args = parser.parse_args()
    enter_private_run()
    result: dict[str, object]
    code = 0
    with Lab(args.variant) as lab:
        try:
            result = every[args.scenario](lab)
        except Exception:
            result = {"error": traceback.format_exc(), "logs": lab.logs_text()}
            code = 1
    print(json.dumps(result, default=str), flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
