#!/usr/bin/python3
"""A network link in user space, for the bench fleet: it carries every IP packet between two
TUN devices (one on this host, one moved into the fleet's network namespace) and delays each
one by half the round trip (plus jitter), or drops it at the loss rate, as `tc netem` would.
This kernel has no netem qdisc, so the link is this process; it keeps each direction in order.

    wire.py HOST_TUN NS_TUN --delay-ms 25 --jitter-ms 2 --loss 1 [--trace FILE]

`--trace FILE` writes a line per TCP packet as it enters the link (seconds, `>` towards the
namespace or `<` from it, ports, flags, payload bytes, `lost` when dropped): the round trips
of a login or a command, counted on the wire.

Both TUN devices exist already (`ip tuntap add ... mode tun`); this process attaches to them.
It runs until killed. Only Debian's python3 standard library is used.
"""

import argparse
import asyncio
import fcntl
import os
import random
import struct

TUNSETIFF = 0x400454CA
IFF_TUN = 0x0001
IFF_NO_PI = 0x1000


def attach(name):
    """An fd of TUN device `name`, non-blocking, packets without a header."""
    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(fd, TUNSETIFF, struct.pack("16sH", name.encode(), IFF_TUN | IFF_NO_PI))
    return fd


class Direction:
    """Packets read from `src`, written to `dst` after the delay, in the order read."""

    def __init__(self, loop, src, dst, delay, jitter, loss, trace=None, arrow=">"):
        self.loop, self.src, self.dst = loop, src, dst
        self.trace, self.arrow = trace, arrow
        self.delay, self.jitter, self.loss = delay, jitter, loss
        self.last = 0.0
        loop.add_reader(src, self.read)

    def read(self):
        while True:
            try:
                packet = os.read(self.src, 65536)
            except BlockingIOError:
                return
            lost = bool(self.loss) and random.random() < self.loss
            if self.trace:
                self.note(packet, lost)
            if lost:
                continue
            at = self.loop.time() + self.delay + random.uniform(-self.jitter, self.jitter)
            # Jitter never reorders a direction: a packet leaves no earlier than the one before.
            at = max(at, self.last)
            self.last = at
            self.loop.call_at(at, self.write, packet)

    def note(self, packet, lost):
        """One trace line for a TCP over IPv4 packet; others are not traced."""
        if len(packet) < 40 or packet[0] >> 4 != 4 or packet[9] != 6:
            return
        ihl = (packet[0] & 0xF) * 4
        total = struct.unpack("!H", packet[2:4])[0]
        sport, dport = struct.unpack("!HH", packet[ihl : ihl + 4])
        offset = (packet[ihl + 12] >> 4) * 4
        flags = packet[ihl + 13]
        names = "".join(n for bit, n in ((2, "S"), (16, "."), (8, "P"), (1, "F"), (4, "R")) if flags & bit)
        size = total - ihl - offset
        self.trace.write(
            f"{self.loop.time():.4f} {self.arrow} {sport}->{dport} {names} {size}{' lost' if lost else ''}\n"
        )
        self.trace.flush()

    def write(self, packet):
        try:
            os.write(self.dst, packet)
        except OSError:
            pass  # a full queue drops the packet, as a real link would


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("host_tun")
    parser.add_argument("ns_tun")
    parser.add_argument("--delay-ms", type=float, default=0.0, help="one way")
    parser.add_argument("--jitter-ms", type=float, default=0.0)
    parser.add_argument("--loss", type=float, default=0.0, help="percent, each way")
    parser.add_argument("--ready", help="a file written once both devices are attached")
    parser.add_argument("--trace", help="a file to write a line per TCP packet to")
    args = parser.parse_args()
    a, b = attach(args.host_tun), attach(args.ns_tun)
    if args.ready:
        with open(args.ready, "w") as ready:
            ready.write(f"{os.getpid()}\n")
    loop = asyncio.new_event_loop()
    delay, jitter, loss = args.delay_ms / 1000, args.jitter_ms / 1000, args.loss / 100
    trace = open(args.trace, "a", buffering=1) if args.trace else None
    Direction(loop, a, b, delay, jitter, loss, trace, ">")
    Direction(loop, b, a, delay, jitter, loss, trace, "<")
    loop.run_forever()


if __name__ == "__main__":
    main()
