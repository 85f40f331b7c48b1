"""TEST-ONLY crash points, for the kill -9 tests (tests/test_slack_exactly_once.py).

With `FNOPS_BRIDGE_TEST_CRASH=<file>` set, a delivery reaching the point named in that file
removes the file and kills the bridge (SIGKILL, as `kill -9` would): one crash, at the exact
instant a test means, and a restarted bridge with the same environment runs on until the
test arms it again. Unset — always, outside those tests — nothing happens and nothing is read.
Points: slack:before-send, slack:after-send (Slack accepted the post, its ts not stored yet),
slack:after-ts (stored, the delivery not yet marked done)."""

from __future__ import annotations

import os
import signal

ENV = "FNOPS_BRIDGE_TEST_CRASH"


def crash_point(name: str) -> None:
    armed = os.environ.get(ENV)
    if not armed:
        return
    try:
        with open(armed, encoding="utf-8") as f:
            if f.read().strip() != name:
                return
        os.unlink(armed)
    except OSError:
        return
    os.kill(os.getpid(), signal.SIGKILL)
