#!/usr/bin/env python3
"""Replays captured SMT frames onto an interface (selftests: kill-client).

usage: replay.py CAPTURE IFACE --src ADDR [--proto 253]

Reads a classic pcap of Ethernet frames (tcpdump -w on one of W's
interfaces), keeps the frames whose IPv4 or IPv6 source is ADDR and whose IP
protocol (IPv6: first next header) is --proto, and sends each unchanged out
of IFACE with an AF_PACKET socket, in capture order. Run it inside the
namespace that owns IFACE. The capture is treated as hostile: every length
is checked before it is used; a record cut short ends the file (tcpdump may
be stopped mid-write). Prints "replayed N frames"; exit 2 on bad input.
"""
import argparse
import ipaddress
import socket
import struct
import sys

LINKTYPE_ETHERNET = 1


def frames(path):
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < 24:
        raise ValueError("shorter than a pcap header")
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        end = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        end = ">"
    else:
        raise ValueError("not a classic pcap file")
    linktype = struct.unpack(end + "I", data[20:24])[0]
    if linktype != LINKTYPE_ETHERNET:
        raise ValueError(f"link type {linktype}, expected Ethernet")
    off = 24
    while off + 16 <= len(data):
        incl, orig = struct.unpack(end + "II", data[off + 8:off + 16])
        if incl > 262144 or off + 16 + incl > len(data):
            return  # cut short at the end
        if incl == orig:  # a frame cut by the snaplen is not replayed
            yield data[off + 16:off + 16 + incl]
        off += 16 + incl


def matches(frame, src, proto):
    if len(frame) < 14:
        return False
    ethertype = struct.unpack("!H", frame[12:14])[0]
    ip = frame[14:]
    if ethertype == 0x0800 and src.version == 4 and len(ip) >= 20:
        return ip[9] == proto and ip[12:16] == src.packed
    if ethertype == 0x86DD and src.version == 6 and len(ip) >= 40:
        return ip[6] == proto and ip[8:24] == src.packed
    return False


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("capture")
    ap.add_argument("iface")
    ap.add_argument("--src", required=True, type=ipaddress.ip_address)
    ap.add_argument("--proto", type=int, default=253)
    a = ap.parse_args()
    try:
        chosen = [fr for fr in frames(a.capture) if matches(fr, a.src, a.proto)]
    except (OSError, ValueError) as e:
        print(f"replay.py: {a.capture}: {e}", file=sys.stderr)
        return 2
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as s:
        s.bind((a.iface, 0))
        for fr in chosen:
            s.send(fr)
    print(f"replayed {len(chosen)} frames")
    return 0


if __name__ == "__main__":
    sys.exit(main())
