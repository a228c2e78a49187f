"""Every shell example in every seeded prompt works against a live Loop.

gunicorn serves ``api.app:app`` on a free port in its own namespace (``tests.live_server``).
For each issue type we build a realistic scenario (project, goal, parent, sibling, resolved
blocker), claim the issue through ``GET /api/dispatch/next`` so the prompt is exactly what
an agent receives (claim commands included), extract every fenced ``bash`` block and run it
with ``bash -e -o pipefail`` and ``LOOP_API_KEY`` in the environment. Each block runs in a
fresh scenario, so every example must work on its own, and every ``curl`` in it must get a
2xx answer.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import textwrap
import urllib.request
import uuid
from typing import Any

import pytest

from tests.conftest import API_KEY
from tests.live_server import LiveServer, live_server_fixture

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not (shutil.which("curl") and shutil.which("jq") and shutil.which("bash")),
                       reason="the prompt examples need bash, curl and jq"),
]

live = live_server_fixture(workers=2)

BLOCK = re.compile(r"^(?P<indent>[ \t]*)```bash\n(?P<body>.*?)^(?P=indent)```[ \t]*$", re.S | re.M)
# Every curl reports its status on stderr without touching stdout (examples pipe stdout to jq).
PREAMBLE = "curl() { command curl -w '%{stderr}STATUS %{http_code}\\n' \"$@\"; }\n"


def call(server: LiveServer, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
    req = urllib.request.Request(server.url + path, method=method,
                                 data=json.dumps(body).encode() if body is not None else None,
                                 headers={"Authorization": f"Bearer {API_KEY}", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        raw = resp.read()
        return json.loads(raw) if raw else None


def scenario(server: LiveServer, issue_type: str, orphan: bool = False) -> dict[str, Any]:
    """A claimed issue of ``issue_type`` with everything the templates can show."""
    tag = uuid.uuid4().hex[:6]
    orphan_of = None
    project = call(server, "POST", "/api/projects", {"name": f"Checkout {tag}", "description": "Pay <fast> & safe"})
    pid = project["data"]["id"]
    call(server, "POST", "/api/goals", {"title": "p95 under 300 ms", "metric": "p95 latency", "currentValue": 420,
                                        "targetValue": 300, "unit": "ms", "projectId": pid})
    label = call(server, "POST", "/api/labels", {"name": f"backend-{tag}", "color": "#123456"})["data"]["id"]
    issue: dict[str, Any] = {"title": f"A {issue_type} about <checkout> & \"quotes\"", "type": issue_type,
                             "status": "todo", "priority": 2, "projectId": pid, "labelIds": [label],
                             "description": "Details with <html> & 'quotes'."}
    parent_type = {"hypothesis": "signal", "task": "plan"}.get(issue_type)
    if parent_type:  # a child: follow-ups must go under the parent (one level of nesting)
        parent = call(server, "POST", "/api/issues", {"title": "Parent", "type": parent_type, "status": "backlog",
                                                       "projectId": pid, "description": "Parent details"})
        issue["parentId"] = parent["data"]["id"]
        call(server, "POST", "/api/issues", {"title": "Sibling", "type": "task", "status": "backlog",
                                             "parentId": parent["data"]["id"]})
        if orphan:
            orphan_of = parent["data"]["id"]
    if issue_type == "signal":
        issue.update(signalSource="sentry", signalPayload={"message": "TypeError: <x> & 'y'", "count": 12})
    if issue_type == "hypothesis":
        issue["hypothesis"] = {"statement": "Retries cause timeouts", "confidence": 0.6, "evidence": ["logs"],
                               "validationCriteria": "p95 drops", "prediction": "Faster"}
    iid = call(server, "POST", "/api/issues", issue)["data"]["id"]
    if orphan_of:  # the parent goes away: nothing can take children now
        call(server, "DELETE", f"/api/issues/{orphan_of}")
    blocker = call(server, "POST", "/api/issues", {"title": "Done blocker", "type": "task", "status": "done"})
    call(server, "POST", f"/api/issues/{iid}/relations", {"type": "blocked_by", "relatedIssueId": blocker["data"]["id"]})
    claimed = call(server, "GET", f"/api/dispatch/next?projectId={pid}")
    assert claimed["issue"]["id"] == iid, claimed
    return dict(claimed)


def blocks(prompt: str) -> list[str]:
    return [textwrap.dedent(m.group("body")) for m in BLOCK.finditer(prompt)]


def run(block: str) -> tuple[int, list[str], str]:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp"),
           "LOOP_API_KEY": API_KEY}
    proc = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", PREAMBLE + block], env=env,
                          capture_output=True, text=True, timeout=60)
    statuses = re.findall(r"^STATUS (\d{3})$", proc.stderr, re.M)
    return proc.returncode, statuses, proc.stdout + proc.stderr


EXPECTED_SLUGS = {"signal": "signal-triage", "hypothesis": "hypothesis-planning", "task": "task-execution",
                  "plan": "plan-decomposition", "monitor": "monitor-check"}


@pytest.mark.parametrize("issue_type", list(EXPECTED_SLUGS))
def test_every_example_in_the_seeded_prompt_works_against_loop(live: LiveServer, issue_type: str) -> None:
    first = scenario(live, issue_type)
    assert first["meta"]["templateSlug"] == EXPECTED_SLUGS[issue_type]
    prompt = first["prompt"]
    assert API_KEY not in prompt and "$LOOP_API_KEY" in prompt
    examples = blocks(prompt)
    # read, comment, follow-up, heartbeat, release, done, review - plus the template's own examples
    assert len(examples) >= 7, prompt
    for index in range(len(examples)):
        claimed = first if index == 0 else scenario(live, issue_type)
        block = blocks(claimed["prompt"])[index]
        curls = len(re.findall(r"(?:^|\$\(|\s)curl\s", block))
        assert curls, block
        code, statuses, output = run(block)
        assert code == 0, f"example {index} failed:\n{block}\n---\n{output}"
        assert len(statuses) >= curls, f"example {index}: not every curl ran\n{block}\n---\n{output}"
        bad = [s for s in statuses if not s.startswith("2")]
        assert not bad, f"example {index} got HTTP {bad}:\n{block}\n---\n{output}"


def test_the_review_example_is_accepted_and_moves_the_score(live: LiveServer) -> None:
    claimed = scenario(live, "task")
    review = next(b for b in blocks(claimed["prompt"]) if "/api/prompt-reviews" in b)
    code, statuses, output = run(review)
    assert code == 0 and statuses == ["201"], output
    version = call(live, "GET", f"/api/templates/{claimed['meta']['templateId']}")["data"]["activeVersion"]
    assert version["reviewScore"] is not None


CREATES = re.compile(r'POST "[^"]*/api/issues"')


@pytest.mark.parametrize("issue_type", ["hypothesis", "task"])
def test_follow_up_examples_work_when_the_parent_was_deleted(live: LiveServer, issue_type: str) -> None:
    first = scenario(live, issue_type, orphan=True)
    creating = [i for i, b in enumerate(blocks(first["prompt"])) if CREATES.search(b)]
    assert creating, first["prompt"]
    for index in creating:
        claimed = first if index == creating[0] else scenario(live, issue_type, orphan=True)
        block = blocks(claimed["prompt"])[index]
        assert "parentId" not in block
        code, statuses, output = run(block)
        assert code == 0 and statuses and all(x.startswith("2") for x in statuses), f"{block}\n---\n{output}"
