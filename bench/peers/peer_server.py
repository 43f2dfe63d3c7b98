"""The protocol loop shared by the Python peers of `tessera bench` (docs/benchmarks.md).

A peer module defines `hello(args) -> (version, config)` (raising ImportError when its framework
is missing) and a dict KINDS mapping a workload kind to a factory:

    def setup_matmul(params, reference, threads) -> Workload

A Workload has `call()` (one timed call, synchronized) and optionally `check` (a dict reported
after setup), `note` (a string), `metric()` (a dict reported after each run, e.g. test accuracy)
and `first_call()` (when the first call differs, e.g. jit compilation done explicitly).
`serve(hello, KINDS)` then answers the runner's requests until stdin closes.
"""
import argparse
import json
import os
import sys
import time
import traceback


class Unsupported(Exception):
    """Raised by a factory for a kind/model this peer does not run."""


def _protocol_stream():
    # Everything the frameworks print must not corrupt the protocol: fd 1 becomes stderr for the
    # rest of the process and the protocol writes to a private duplicate of the original stdout.
    fd = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    return os.fdopen(fd, "w", buffering=1)


def parse_args(extra=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--system", required=True)
    ap.add_argument("--threads", type=int, default=2)
    if extra:
        extra(ap)
    return ap.parse_args()


def serve(args, hello, kinds):
    out = _protocol_stream()

    def send(obj):
        out.write(json.dumps(obj) + "\n")
        out.flush()

    try:
        version, config = hello(args)
    except ImportError as e:
        send({"ok": False, "missing": str(e)})
        return
    except Exception as e:  # noqa: BLE001 - reported to the runner
        send({"ok": False, "error": f"{type(e).__name__}: {e}"})
        return
    send({"ok": True, "system": args.system, "version": version, "config": config})

    live = {}
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            req = json.loads(line)
            cmd = req.get("cmd")
            if cmd == "setup":
                live.pop(req["id"], None)
                factory = kinds.get(req["kind"])
                if factory is None:
                    send({"ok": False, "unsupported": f"{args.system} has no '{req['kind']}' workload"})
                    continue
                try:
                    w = factory(req.get("params", {}), req.get("reference"), args.threads)
                except Unsupported as e:
                    send({"ok": False, "unsupported": str(e)})
                    continue
                t0 = time.perf_counter()
                (w.first_call if hasattr(w, "first_call") else w.call)()
                first = time.perf_counter() - t0
                for _ in range(int(req.get("warmup", 0))):
                    w.call()
                live[req["id"]] = w
                resp = {"ok": True, "first_s": first}
                if getattr(w, "check", None):
                    resp["check"] = w.check
                if getattr(w, "note", None):
                    resp["note"] = w.note
                send(resp)
            elif cmd == "run":
                w = live[req["id"]]
                times = []
                for _ in range(int(req.get("reps", 1))):
                    t0 = time.perf_counter()
                    w.call()
                    times.append(time.perf_counter() - t0)
                if hasattr(w, "per_call"):  # e.g. eager_add: one call = `inner` operations
                    times = [t / w.per_call for t in times]
                resp = {"ok": True, "times": times}
                if hasattr(w, "metric"):
                    resp["metric"] = w.metric()
                send(resp)
            elif cmd == "release":
                live.pop(req.get("id"), None)
                send({"ok": True})
            else:
                send({"ok": False, "error": f"unknown command {cmd!r}"})
        except Exception as e:  # noqa: BLE001 - reported to the runner, the peer keeps serving
            traceback.print_exc(file=sys.stderr)
            send({"ok": False, "error": f"{type(e).__name__}: {e}"})
