"""How long the code tools' operations take on the base gst image (the goal
is < 200 ms each), measured over a real socket from a real server image:

    .venv/bin/python benchmarks/code_tools.py [ROUNDS]

Each operation is asked ROUNDS times (default 5); the median and the worst
are printed, in milliseconds. Not part of run.py: it stands alone.
"""

from __future__ import annotations

import json
import socket
import statistics
import sys
import time

from stui_repl.image.gst import ensure_gst
from stui_repl.image.launcher import launch

REQUESTS = [
    {"op": "source", "class": "Object", "selector": "printOn:"},
    {"op": "source", "selector": "printOn:"},
    {"op": "browse", "class": "Object"},
    {"op": "implementors", "selector": "printOn:"},
    {"op": "senders", "selector": "printOn:"},
    {"op": "senders", "selector": "new"},
    {"op": "senders", "selector": "value"},
    {"op": "senders", "selector": "inject:into:"},
    {"op": "references", "name": "OrderedCollection"},
]


def main(rounds: int) -> None:
    running = launch(ensure_gst())
    try:
        sock = socket.create_connection(("127.0.0.1", running.port))
        stream = sock.makefile("rwb")

        def ask(message: dict) -> dict:
            stream.write(json.dumps(message).encode() + b"\n")
            stream.flush()
            while True:
                reply = json.loads(stream.readline())
                if "event" not in reply:
                    return reply

        assert ask({"id": 0, "op": "hello", "protocol": 2, "token": running.token})["ok"]
        for number, request in enumerate(REQUESTS, 1):
            times = []
            for _ in range(rounds):
                start = time.perf_counter()
                reply = ask({"id": number, **request})
                times.append((time.perf_counter() - start) * 1000)
                assert reply["ok"], reply
            found = len(reply.get("methods", ())) if "methods" in reply else "-"
            print(f"{json.dumps(request):60} {found!s:>5} methods  median {statistics.median(times):6.1f} ms  worst {max(times):6.1f} ms")
    finally:
        running.stop()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 5)
