#!/usr/bin/env python3
"""Fail when an interop cell was skipped: in CI every engine is installed, so every cell must run.

Usage: check-interop-skips.py JUNIT_XML

Reads the JUnit XML that pytest wrote (``--junitxml``) and fails (exit 1) when a test
under ``tests/interop/`` was skipped, listing each with its reason.
No skip is allowed: plaintext and encrypted cells alike (the encrypted ones run since
p2pshare has ``--encryption``, issue 10).
"""

from __future__ import annotations

import sys
import xml.etree.ElementTree as ET

INTEROP = "tests.interop."


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
    refused: list[str] = []
    for case in root.iter("testcase"):
        if not case.get("classname", "").startswith(INTEROP):
            continue
        name = f"{case.get('classname')}::{case.get('name')}"
        skipped = case.find("skipped")
        if skipped is None:
            ran += 1
            continue
        refused.append(f"{name}: {skipped.get('message', '')}")
    if refused:
        for line in refused:
            print(f"interop check: SKIPPED in CI: {line}", file=sys.stderr)
        print(f"interop check: {len(refused)} interop cell(s) skipped; CI installs every engine "
              "(make tools), so each must run", file=sys.stderr)
        return 1
    if ran == 0:
        print("interop check: no interop cell ran", file=sys.stderr)
        return 1
    print(f"interop check: {ran} interop cell(s) ran, none skipped")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
