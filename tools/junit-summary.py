#!/usr/bin/env python3
"""Counts ctest JUnit results: prints "PASSED FAILED SKIPPED" on one line.

usage: junit-summary.py OUT_DIR FILE.xml...

status="run" without a failure passed; "disabled" skipped; "notrun" is a skip
only when the test asked for it (GTEST_SKIP through SKIP_REGULAR_EXPRESSION, or
SKIP_RETURN_CODE) -- a missing executable (<target>_NOT_BUILT) or a failed
fixture is a failure, as in ctest's own summary. The names of failed and
skipped tests go to OUT_DIR/failed.txt and OUT_DIR/skipped.txt.
"""
import sys
import xml.etree.ElementTree as ET

out_dir, paths = sys.argv[1], sys.argv[2:]
passed, failed, skipped = [], [], []
for path in paths:
    try:
        cases = list(ET.parse(path).getroot().iter("testcase"))
    except (ET.ParseError, OSError) as e:
        print(f"junit-summary: cannot read {path}: {e}", file=sys.stderr)
        failed.append(path)
        continue
    for c in cases:
        name, status = c.get("name", "?"), c.get("status", "")
        skip = c.find("skipped")
        why = skip.get("message", "") if skip is not None else ""
        if status == "run" and c.find("failure") is None:
            passed.append(name)
        elif status == "disabled":
            skipped.append(name)
        elif status == "notrun" and why.startswith(("SKIP_REGULAR_EXPRESSION", "SKIP_RETURN_CODE")):
            skipped.append(name)
        else:
            failed.append(name + (f" ({why})" if why else ""))
with open(out_dir + "/failed.txt", "w") as f:
    f.write("".join(n + "\n" for n in failed))
with open(out_dir + "/skipped.txt", "w") as f:
    f.write("".join(n + "\n" for n in skipped))
print(len(passed), len(failed), len(skipped))
