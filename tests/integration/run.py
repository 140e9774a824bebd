#!/usr/bin/env python3
"""run - Postern's integration test runner.

Finds tests/integration/test_*.py, runs every function named test_* in file order, prints
`ok   name`, `FAIL name` (with the traceback) or `skip name: reason`, and ends with the line
`N passed, N failed, N skipped`. Exit status 1 if anything failed.

    tests/integration/run.py [-k SUBSTRING]... [--list] [--timeout SECONDS]

Each test runs under an alarm (default 300 s; a test module may set TIMEOUT = {name: s}),
and every instance a test started is stopped, by PID, when it ends and again at exit.
Environment: POSTERN_BIN (default build/bin), POSTERN_TEST_KEEP=1 keeps the directories of
failed tests, POSTERN_TEST_SEED fixes the random choices, POSTERN_TEST_VERBOSE=1.
"""

import argparse
import atexit
import glob
import importlib.util
import os
import random
import signal
import sys
import time
import traceback

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import harness  # noqa: E402


class TestTimeout(Exception):
    pass


def on_alarm(signum, frame):
    raise TestTimeout("test ran out of time")


def on_term(signum, frame):
    harness.cleanup_all()
    sys.exit(1)


def discover(patterns):
    """discover - [(module name, test name, function, timeout)] in file and definition order."""
    out = []
    for path in sorted(glob.glob(os.path.join(HERE, "test_*.py"))):
        modname = os.path.splitext(os.path.basename(path))[0]
        spec = importlib.util.spec_from_file_location(modname, path)
        mod = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(mod)
        timeouts = getattr(mod, "TIMEOUT", {})
        for name, fn in list(vars(mod).items()):
            if not name.startswith("test_") or not callable(fn):
                continue
            full = "%s.%s" % (modname, name)
            if patterns and not any(p in full for p in patterns):
                continue
            out.append((modname, name, fn, timeouts.get(name)))
    return out


def main():
    ap = argparse.ArgumentParser(description="Postern integration tests")
    ap.add_argument("-k", action="append", default=[], help="run tests whose name contains this")
    ap.add_argument("--list", action="store_true", help="list the tests and exit")
    ap.add_argument("--timeout", type=int, default=300, help="default seconds per test")
    args = ap.parse_args()

    seed = int(os.environ.get("POSTERN_TEST_SEED") or time.time())
    random.seed(seed)
    signal.signal(signal.SIGALRM, on_alarm)
    signal.signal(signal.SIGTERM, on_term)
    atexit.register(harness.cleanup_all)

    tests = discover(args.k)
    if args.list:
        for mod, name, _, _ in tests:
            print("%s.%s" % (mod, name))
        return 0

    print("integration: %d tests, seed %d, binaries in %s, %s" % (
        len(tests), seed, harness.BIN, "as root" if harness.IS_ROOT else "not root"))
    sys.stdout.flush()
    passed = failed = skipped = 0
    failures = []
    for mod, name, fn, tmo in tests:
        full = "%s.%s" % (mod, name)
        t0 = time.monotonic()
        signal.alarm(tmo or args.timeout)
        try:
            fn()
            result = "ok"
        except harness.Skip as e:
            result = "skip"
            reason = str(e)
        except BaseException as e:   # a failing test must not stop the run
            if isinstance(e, (KeyboardInterrupt, SystemExit)):
                signal.alarm(0)
                raise
            result = "fail"
            err = e
            tb = traceback.format_exc()
        finally:
            signal.alarm(0)
        dt = time.monotonic() - t0
        if result == "ok":
            passed += 1
            print("ok   %s (%.1fs)" % (full, dt))
        elif result == "skip":
            skipped += 1
            print("skip %s: %s" % (full, reason))
        else:
            failed += 1
            failures.append(full)
            print("FAIL %s (%.1fs)" % (full, dt))
            if "is not built" in str(err):
                print("    " + str(err))
                continue
            for line in tb.rstrip().splitlines():
                print("    " + line)
            if harness._shared is not None:
                harness.show_log(harness._shared)
        sys.stdout.flush()

    harness.cleanup_all()
    if failures:
        print("failed: " + " ".join(failures))
    print("%d passed, %d failed, %d skipped" % (passed, failed, skipped))
    sys.stdout.flush()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
