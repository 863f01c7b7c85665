"""Several worker processes on one listening socket (``http.workers`` > 1).

The supervisor binds nothing itself: it is handed the bound sockets, forks the workers (each
runs its own event loop, stores and HTTP server on the inherited sockets; the kernel spreads
connections between them), and then only watches:

* a worker that dies unexpectedly is replaced (after a short back-off if it keeps dying);
* SIGTERM/SIGINT is passed to every worker, which finishes its in-flight requests and exits;
  the supervisor exits when the last one has, with 0 when all exited cleanly.

No state lives in a worker that another needs: metadata and blobs are shared through the
stores, and metrics through prometheus-client's multiprocess directory, which the supervisor
creates before forking, marks dead workers in, and removes at exit.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import select
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections.abc import Callable
from types import FrameType

log = logging.getLogger("zot_artifact_store.supervisor")

# A worker that dies sooner than this after its start counts as crashing: wait before the next.
CRASH_WINDOW_S = 5.0
MAX_BACKOFF_S = 10.0
PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
# prometheus-client reads this when it is first imported, so it is set before any worker
# imports it (this module must not import prometheus-client at import time).
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"


class Supervisor:
    def __init__(
        self,
        workers: int,
        serve: Callable[[int, Callable[[], None]], int],
        on_all_ready: Callable[[], None],
        sockets: list[socket.socket],
    ) -> None:
        self.count = workers
        self.serve = serve  # runs in the child: serve(slot, ready) -> exit code
        self.on_all_ready = on_all_ready
        self.sockets = sockets
        self.children: dict[int, tuple[int, float]] = {}  # pid -> (slot, started)
        self.stopping = False
        self.failed = False
        self.backoff = 0.5

    # ---- the parent ---------------------------------------------------------------------------
    def run(self) -> int:
        metrics_dir = tempfile.mkdtemp(prefix="zas-metrics-")
        os.environ[MULTIPROC_ENV] = metrics_dir
        ready_r, ready_w = os.pipe()
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            for slot in range(self.count):
                self._spawn(slot, ready_w)
            self._wait_ready(ready_r)
            while self.children:
                try:
                    pid, status = os.waitpid(-1, 0)
                except ChildProcessError:
                    break
                self._reap(pid, status, ready_w)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            for fd in (ready_r, ready_w):
                os.close(fd)
            for sock in self.sockets:
                sock.close()
            shutil.rmtree(metrics_dir, ignore_errors=True)
        log.info("stopped", extra={"workers": self.count})
        return 1 if self.failed else 0

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        if not self.stopping:
            log.info("stopping workers", extra={"signal": signal.Signals(signum).name})
        self.stopping = True
        for pid in list(self.children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    def _wait_ready(self, ready_r: int) -> None:
        """Until every first-generation worker has said it serves (or stopping began)."""
        pending = self.count
        while pending > 0 and not self.stopping:
            readable, _, _ = select.select([ready_r], [], [], 0.2)
            if readable:
                pending -= len(os.read(ready_r, pending))
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid:  # a worker could not start: give up rather than loop
                self.children.pop(pid, None)
                code = os.waitstatus_to_exitcode(status)
                log.error(
                    "a worker exited before it was ready; stopping", extra={"exit_code": code}
                )
                self.failed = True
                self._on_signal(signal.SIGTERM, None)
        if not self.stopping:
            self.on_all_ready()

    def _reap(self, pid: int, status: int, ready_w: int) -> None:
        slot, started = self.children.pop(pid, (-1, 0.0))
        code = os.waitstatus_to_exitcode(status)
        with contextlib.suppress(Exception):
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(pid)
        if self.stopping:
            # A worker still starting when asked to stop dies of the SIGTERM itself: also clean.
            if code not in (0, -signal.SIGTERM):
                self.failed = True
            return
        if slot < 0:
            return
        log.error("worker died; starting a new one", extra={"worker_pid": pid, "exit_code": code})
        if time.monotonic() - started < CRASH_WINDOW_S:
            time.sleep(self.backoff)
            self.backoff = min(self.backoff * 2, MAX_BACKOFF_S)
        else:
            self.backoff = 0.5
        if not self.stopping:
            self._spawn(slot, ready_w)

    def _spawn(self, slot: int, ready_w: int) -> None:
        parent = os.getpid()
        pid = os.fork()
        if pid:
            self.children[pid] = (slot, time.monotonic())
            return
        # ---- the child ----
        code = 1
        try:
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, signal.SIG_DFL)
            _stop_when_parent_dies(parent)
            code = self.serve(slot, lambda: os.write(ready_w, b"r"))
        except BaseException:
            log.exception("worker crashed")
        finally:
            with contextlib.suppress(Exception):
                sys.stdout.flush()
                sys.stderr.flush()
            os._exit(code)


def _stop_when_parent_dies(parent: int) -> None:
    """Ask Linux to SIGTERM this worker if the supervisor dies (even by SIGKILL), so no worker
    outlives it holding the port."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # it died before prctl took effect
        os.kill(os.getpid(), signal.SIGTERM)
