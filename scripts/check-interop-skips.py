#!/usr/bin/env python3
"""Fail when an interop cell was skipped: in CI every engine is installed, so every cell must run.

Usage: check-interop-skips.py JUNIT_XML

Reads the JUnit XML that pytest wrote (``--junitxml``) and fails (exit 1) when a test
under ``tests/interop/`` was skipped, listing each with its reason.

TEMPORARY EXCEPTION (remove when p2pshare has ``--encryption``, issue 10): cells skipped
because p2pshare has no ``--encryption`` option yet, whose skip reason starts with
``needs_encryption:``, are allowed and only listed.  Once MSE lands they run, and this
exception must go: delete ``ALLOWED_PREFIXES`` below.
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET

INTEROP = "tests.interop."
#: Skip reasons CI lets pass for now; see the module docstring (remove once --encryption exists).
ALLOWED_PREFIXES = ("needs_encryption:",)


def main(argv: list[str]) -> int:
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        root = ET.parse(argv[1]).getroot()
    except (OSError, ET.ParseError) as exc:
        print(f"interop check: cannot read {argv[1]}: {exc}", file=sys.stderr)
        return 1
    ran = 0
    allowed: list[str] = []
    refused: list[str] = []
    for case in root.iter("testcase"):
        if not case.get("classname", "").startswith(INTEROP):
            continue
        name = f"{case.get('classname')}::{case.get('name')}"
        skipped = case.find("skipped")
        if skipped is None:
            ran += 1
            continue
        reason = skipped.get("message", "")
        if reason.startswith(ALLOWED_PREFIXES):
            allowed.append(f"{name}: {reason}")
        else:
            refused.append(f"{name}: {reason}")
    for line in allowed:
        print(f"interop check: allowed for now (needs --encryption): {line}")
    if refused:
        for line in refused:
            print(f"interop check: SKIPPED in CI: {line}", file=sys.stderr)
        print(f"interop check: {len(refused)} interop cell(s) skipped; CI installs every engine "
              "(make tools), so each must run", file=sys.stderr)
        return 1
    if ran == 0:
        print("interop check: no interop cell ran", file=sys.stderr)
        return 1
    waiting = len(allowed)
    print(f"interop check: {ran} interop cell(s) ran, {waiting} encrypted cell(s) waiting for --encryption")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
