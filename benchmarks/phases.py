"""Helper run in a fresh interpreter by the benchmarks: where `stui -c CODE` spends its time.

Does what `stui -c CODE` does (cli.main -> run_scripted), step by step, and
prints one line `PHASES {json}` with the seconds each step took. The
interpreter's start-up and exit are found from the wall-clock times it reports
(`started`, `ended`) and the parent's spawn and exit times.
"""

import time

STARTED = time.time()  # compared with the parent's spawn time: interpreter start-up

import io
import json
import sys

t0 = time.perf_counter()
from stui_repl import cli
from stui_repl.client.connection import Connection
from stui_repl.image import launcher
from stui_repl.image.attachment import Attachment
from stui_repl.image.gst import ensure_gst
from stui_repl.modes import script
from stui_repl.render import PlainRenderer
from stui_repl.session.controller import SessionController

t1 = time.perf_counter()
code = sys.argv[1] if len(sys.argv) > 1 else "3 + 4"
args = cli.build_parser().parse_args(["-c", code])
t2 = time.perf_counter()
install = ensure_gst(allow_provision=False)
t3 = time.perf_counter()
launcher.server_image(install)
t4 = time.perf_counter()
image = launcher.launch(install)  # hashes the server sources again (counted in server_image)
t5 = time.perf_counter()
connection = Connection.open(image.host, image.port, image.token)
t6 = time.perf_counter()
out = io.StringIO()
controller = SessionController(open_attachment=lambda *args, **options: Attachment(connection))
controller.attach()
status = script.run(script.ScriptInput("-c", text=code), controller, PlainRenderer(out=out), source="-c",
                    print_values=True, keep_going=False)
t7 = time.perf_counter()
connection.close()
image.stop()
t8 = time.perf_counter()
phases = {
    "imports": t1 - t0,
    "argparse": t2 - t1,
    "find gst (ensure_gst)": t3 - t2,
    "server image key (hash sources)": t4 - t3,
    "launch (spawn gst, wait for port)": t5 - t4,
    "connect + hello": t6 - t5,
    "evaluate + print": t7 - t6,
    "close + stop image": t8 - t7,
}
print("PHASES " + json.dumps({"phases": phases, "status": status, "output": out.getvalue(),
                              "started": STARTED, "ended": time.time()}), flush=True)
