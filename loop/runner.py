"""The reference agent runner behind ``loop work --command "<agent cli>"``.

One cycle: claim the next issue (``GET /api/dispatch/next``), run the agent command in a shell
with the prompt on stdin, in the working directory, heartbeating the claim while it runs; then
report back: exit 0 marks the issue done with a summary (the summary file if the agent wrote
one, else the last lines of its stdout); any other exit (or a timeout) releases the claim as
``failed`` with the error: the issue returns to the queue, and the server counts the failure as a
strike, parking the issue for a human after ``LOOP_MAX_LEASE_EXPIRIES`` of them. SIGTERM/SIGINT
stop the agent and release the claim (no strike) before the runner exits. The agent sees the
claim in its environment (``LOOP_ISSUE_ID``, ``LOOP_SESSION_ID``, ``LOOP_CLAIM_TOKEN``,
``LOOP_SUMMARY_FILE``, ``LOOP_API_URL``, ``LOOP_API_KEY``) so it can comment or split work itself.
"""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from loop.client import ConflictError, LoopClient, LoopClientError, NotFoundError

MAX_REASON = 2000
MAX_SUMMARY = 20000


@dataclass
class RunnerConfig:
    command: str
    cwd: Path | None = None
    project_id: str | None = None
    poll_interval: float = 10.0
    heartbeat_interval: float | None = None
    """Seconds between heartbeats; default a third of the lease the server granted."""
    once: bool = False
    max_tasks: int | None = None
    timeout: float | None = None
    """Kill the agent after this many seconds (the claim is released as failed)."""
    summary_file: str | None = None
    """Where the agent may write its summary (relative to cwd); default a temporary file."""
    summary_lines: int = 30
    kill_grace: float = 10.0


@dataclass
class Outcome:
    status: str  # idle | done | failed | stopped | lost | error
    issue_id: str | None = None
    detail: str = ""


def _parse_iso(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


class Runner:
    def __init__(self, client: LoopClient, config: RunnerConfig, *, log: Callable[[str], None] | None = None,
                 out: IO[str] | None = None, clock: Callable[[], float] = time.time) -> None:
        self.loop = client
        self.cfg = config
        self.log = log or (lambda msg: print(f"loop work: {msg}", file=sys.stderr, flush=True))
        self.out = out or sys.stdout
        self.clock = clock
        self.stop_event = threading.Event()
        self.stop_reason = ""
        self.proc: subprocess.Popen[bytes] | None = None

    # ---------------------------------------------------------------- control
    def request_stop(self, reason: str) -> None:
        self.stop_reason = reason
        self.stop_event.set()

    def install_signal_handlers(self) -> None:
        def handler(signum: int, _frame: Any) -> None:
            self.request_stop(f"runner stopped by {signal.Signals(signum).name}")

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)

    def run(self) -> int:
        """Cycle until stopped (or once); 0 unless an agent failed in ``--once`` mode."""
        done = 0
        while not self.stop_event.is_set():
            outcome = self.cycle()
            if self.cfg.once:
                return 0 if outcome.status in ("idle", "done") else 1
            if outcome.status == "done":
                done += 1
                if self.cfg.max_tasks is not None and done >= self.cfg.max_tasks:
                    break
            if outcome.status in ("idle", "error"):
                self.stop_event.wait(self.cfg.poll_interval)
        return 0

    # ------------------------------------------------------------------ cycle
    def cycle(self) -> Outcome:
        try:
            task = self.loop.dispatch.next(self.cfg.project_id)
        except LoopClientError as exc:
            self.log(f"cannot claim work: {exc}")
            return Outcome("error", detail=str(exc))
        if task is None:
            return Outcome("idle")
        issue, claim = task["issue"], task.get("claim") or {}
        self.log(f"claimed #{issue.get('number')} {issue.get('title')} (session {claim.get('sessionId')})")
        try:
            return self._work(task)
        except LoopClientError as exc:
            self.log(f"error while working on {issue['id']}: {exc}")
            self._release(claim, f"runner error: {exc}")
            return Outcome("error", issue["id"], str(exc))

    def _work(self, task: dict[str, Any]) -> Outcome:
        issue, claim = task["issue"], task.get("claim") or {}
        summary_path = self._summary_path()
        prompt = task.get("prompt") or self._fallback_prompt(issue["id"])
        env = {**os.environ, "LOOP_ISSUE_ID": issue["id"], "LOOP_ISSUE_NUMBER": str(issue.get("number", "")),
               "LOOP_SESSION_ID": claim.get("sessionId", ""), "LOOP_CLAIM_TOKEN": claim.get("token", ""),
               "LOOP_SUMMARY_FILE": str(summary_path), "LOOP_API_URL": self.loop.base_url,
               "LOOP_API_KEY": self.loop.api_key or "",
               "LOOP_PROMPT_VERSION_ID": str((task.get("meta") or {}).get("versionId") or "")}
        try:
            return self._report(task, *self._run_agent(prompt, env, claim), summary_path)
        finally:
            if not self.cfg.summary_file:
                summary_path.unlink(missing_ok=True)

    def _report(self, task: dict[str, Any], status: str, tail: list[str], err_tail: list[str],
                summary_path: Path) -> Outcome:
        issue, claim = task["issue"], task.get("claim") or {}
        if status == "stopped":
            self._release(claim, self.stop_reason or "runner stopped")
            return Outcome("stopped", issue["id"])
        if status == "lost":
            return Outcome("lost", issue["id"])
        if status == "timeout":
            return self._failed(issue, claim, f"agent command timed out after {self.cfg.timeout:g}s")
        code = int(status)
        if code != 0:
            reason = f"agent command exited with status {code}"
            output = "\n".join(err_tail or tail)
            if output:  # keep the exit status and the end of the output
                reason += ": " + output[-(MAX_REASON - len(reason) - 2):]
            return self._failed(issue, claim, reason)
        summary = self._summary(summary_path, tail)
        try:
            self.loop.issues.complete(issue["id"], summary, claim_token=claim.get("token"))
        except ConflictError as exc:
            # The agent may have completed the issue itself (then the claim is already closed).
            if self.loop.issues.get(issue["id"]).get("status") != "done":
                self.log(f"could not complete #{issue.get('number')}: {exc}")
                return Outcome("lost", issue["id"], str(exc))
        self.log(f"done #{issue.get('number')} {issue.get('title')}")
        return Outcome("done", issue["id"], summary)

    def _failed(self, issue: dict[str, Any], claim: dict[str, Any], reason: str) -> Outcome:
        """Release the claim as failed with the error: a strike on the server, which parks the
        issue (backlog + needs-human-review) once it has failed ``LOOP_MAX_LEASE_EXPIRIES`` times."""
        self._release(claim, reason, failed=True)
        self.log(f"agent failed on #{issue.get('number')} ({reason.splitlines()[0]}); claim released as failed")
        return Outcome("failed", issue["id"], reason)

    # ---------------------------------------------------------------- helpers
    def _summary_path(self) -> Path:
        if self.cfg.summary_file:
            path = Path(self.cfg.summary_file)
            path = path if path.is_absolute() else (self.cfg.cwd or Path.cwd()) / path
        else:
            fd, name = tempfile.mkstemp(prefix="loop-summary-", suffix=".md")
            os.close(fd)
            path = Path(name)
        path.unlink(missing_ok=True)
        return path

    def _summary(self, path: Path, tail: list[str]) -> str:
        text = path.read_text().strip() if path.exists() else ""
        if not text:
            text = "\n".join(tail).strip() or "Agent command completed with exit status 0 (no output)."
        return text[-MAX_SUMMARY:]

    def _fallback_prompt(self, issue_id: str) -> str:
        issue = self.loop.issues.get(issue_id)
        return (f"# {issue.get('title')}\n\nIssue #{issue.get('number')} ({issue.get('type')}, id {issue_id}).\n\n"
                f"{issue.get('description') or ''}\n").strip() + "\n"

    def _release(self, claim: dict[str, Any], reason: str, failed: bool = False) -> None:
        if not claim.get("sessionId"):
            return
        try:
            self.loop.dispatch.release(claim["sessionId"], claim.get("token"), reason[:MAX_REASON], failed=failed)
        except (ConflictError, NotFoundError) as exc:
            self.log(f"claim {claim['sessionId']} was already closed: {exc}")
        except LoopClientError as exc:
            self.log(f"could not release claim {claim['sessionId']}: {exc} (its lease will expire)")

    def _heartbeat_every(self, claim: dict[str, Any]) -> float:
        """The configured interval, or a third of the lease granted; never as long as the lease."""
        try:
            lease = _parse_iso(claim["expiresAt"]) - self.clock()
        except (KeyError, ValueError):
            lease = 60.0
        every = self.cfg.heartbeat_interval
        if every and every < lease:
            return every
        if every:
            self.log(f"--heartbeat {every:g}s is not shorter than the {lease:.0f}s lease; using {lease / 3:.1f}s")
        return max(0.5, lease / 3)

    def _run_agent(self, prompt: str, env: dict[str, str], claim: dict[str, Any]) -> tuple[str, list[str],
                                                                                          list[str]]:
        """Run the command; returns (exit code as text | stopped | lost | timeout, stdout tail, stderr tail)."""
        tail: collections.deque[str] = collections.deque(maxlen=self.cfg.summary_lines)
        err_tail: collections.deque[str] = collections.deque(maxlen=10)
        proc = subprocess.Popen(self.cfg.command, shell=True, cwd=self.cfg.cwd, env=env, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)
        self.proc = proc
        threads = [
            threading.Thread(target=self._feed, args=(proc, prompt), daemon=True),
            threading.Thread(target=self._pump, args=(proc.stdout, tail, self.out), daemon=True),
            threading.Thread(target=self._pump, args=(proc.stderr, err_tail, sys.stderr), daemon=True),
        ]
        for t in threads:
            t.start()
        every = self._heartbeat_every(claim)
        started = self.clock()
        next_beat = started + every
        status: str | None = None
        while status is None:
            try:
                code = proc.wait(timeout=0.1)
                status = str(code)
                break
            except subprocess.TimeoutExpired:
                pass
            now = self.clock()
            if self.stop_event.is_set():
                status = "stopped"
            elif self.cfg.timeout is not None and now - started >= self.cfg.timeout:
                status = "timeout"
            elif now >= next_beat:
                next_beat = now + every
                if not self._beat(claim):
                    status = "lost"
        if proc.poll() is None:
            self._kill(proc)
        for t in threads[1:]:
            t.join(5)
        self.proc = None
        return status, list(tail), list(err_tail)

    def _beat(self, claim: dict[str, Any]) -> bool:
        try:
            self.loop.dispatch.heartbeat(claim["sessionId"], claim.get("token"))
            return True
        except (ConflictError, NotFoundError) as exc:
            self.log(f"lost the claim ({exc}); stopping the agent")
            return False
        except LoopClientError as exc:
            self.log(f"heartbeat failed ({exc}); will retry")
            return True

    def _kill(self, proc: subprocess.Popen[bytes]) -> None:
        """SIGTERM the agent's process group, then SIGKILL after the grace period."""
        for sig, wait in ((signal.SIGTERM, self.cfg.kill_grace), (signal.SIGKILL, 5.0)):
            try:
                os.killpg(proc.pid, sig)
            except ProcessLookupError:
                return
            try:
                proc.wait(timeout=wait)
                return
            except subprocess.TimeoutExpired:
                continue

    @staticmethod
    def _feed(proc: subprocess.Popen[bytes], prompt: str) -> None:
        assert proc.stdin is not None
        try:
            proc.stdin.write(prompt.encode())
            proc.stdin.close()
        except (BrokenPipeError, OSError):
            pass  # the agent does not read its stdin: fine

    @staticmethod
    def _pump(stream: IO[bytes] | None, tail: collections.deque[str], sink: IO[str]) -> None:
        if stream is None:
            return
        for raw in iter(stream.readline, b""):
            line = raw.decode("utf-8", "replace")
            tail.append(line.rstrip("\n"))
            try:
                sink.write(line)
                sink.flush()
            except (OSError, ValueError):
                pass
        stream.close()
