"""Runs the Graph emulator as its own process until SIGINT or SIGTERM.

    python -m leadsync.emulators.graph --port 8001 [--app-id 1000]
        [--app-secret emulator-app-secret] [--token emulator-token]

Prints one line, `graph emulator listening on http://127.0.0.1:PORT`, once it
accepts requests (with `--port 0` the port is a free one), so a parent process
can read the URL. Drive it through the `/_emulator/...` control endpoints.
"""

from __future__ import annotations

import argparse
import signal
import threading

from leadsync.emulators.graph.server import GraphEmulator


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m leadsync.emulators.graph")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--app-id", default="1000")
    parser.add_argument("--app-secret", default="emulator-app-secret")
    parser.add_argument("--token", default="emulator-token")
    args = parser.parse_args(argv)
    done = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: done.set())
    emulator = GraphEmulator(
        app_id=args.app_id,
        app_secret=args.app_secret,
        access_token=args.token,
        host=args.host,
        port=args.port,
    )
    with emulator:
        print(f"graph emulator listening on {emulator.url}", flush=True)
        done.wait()


if __name__ == "__main__":
    main()
