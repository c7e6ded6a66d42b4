#!/usr/bin/env python3
"""Checks that smt-decode recovered every smt-echo payload of a run.

usage: echo_payloads.py DECODED.jsonl --sizes 64,1024 --count N [--seed S] [--runs R]

DECODED.jsonl is `smt-decode --json --max-bytes 0` output. The expected
requests are smt-echo's payloads (tools/smt-echo/echo_payload.h, regenerated
here) for every size and index, R times (one per client run), plus R empty
first RPCs (the session set-up). Requests and responses must each equal that
multiset exactly: nothing missing, nothing extra, nothing truncated. Prints
one summary line; exit 1 on any difference.
"""
import argparse
import collections
import hashlib
import json
import sys

MASK = (1 << 64) - 1


def echo_payload(seed, size, index):
    state = (seed ^ (size << 20) ^ (index * 0x2545F4914F6CDD1D)) & MASK
    out = bytearray()
    while len(out) < size:
        state = (state + 0x9E3779B97F4A7C15) & MASK
        z = state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        z ^= z >> 31
        out += z.to_bytes(8, "little")
    return bytes(out[:size])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("decoded")
    ap.add_argument("--sizes", required=True)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--runs", type=int, default=1)
    a = ap.parse_args()

    expected = collections.Counter()
    for _ in range(a.runs):
        expected[hashlib.sha256(b"").hexdigest()] += 1
        for size in (int(s) for s in a.sizes.split(",")):
            for i in range(a.count):
                expected[hashlib.sha256(echo_payload(a.seed, size, i)).hexdigest()] += 1

    got = {"request": collections.Counter(), "response": collections.Counter()}
    truncated = 0
    with open(a.decoded) as f:
        for line in f:
            m = json.loads(line)
            if m.get("type") != "message":
                continue
            if m["truncated"]:
                truncated += 1
            got[m["kind"]][hashlib.sha256(bytes.fromhex(m["data_hex"])).hexdigest()] += 1

    ok = truncated == 0
    for kind, counter in got.items():
        missing = sum((expected - counter).values())
        extra = sum((counter - expected).values())
        if missing or extra:
            print(f"{kind}s: {missing} expected payloads missing, {extra} unexpected", file=sys.stderr)
            ok = False
    if truncated:
        print(f"{truncated} messages truncated (use --max-bytes 0)", file=sys.stderr)
    total = sum(expected.values())
    print(f"{sum(got['request'].values())} requests and {sum(got['response'].values())} "
          f"responses decoded; {total} expected payloads each")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
