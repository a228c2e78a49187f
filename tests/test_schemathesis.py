"""A bounded, seeded schemathesis run of every operation in ``/api/openapi.json``: none answers 5xx.

The document is read from the app in-process (WSGI, no network); every case is sent with a
valid key. Path ids name rows seeded first (an issue with a label, relation and comment, a
project, goal, signal, template, claim...), so cases reach the code behind the 404 checks;
each operation gets schema-valid and schema-violating cases, deletes last. Derandomized, so
a failure reproduces; ``MAX_EXAMPLES`` per operation and mode keeps the run under a minute.
"""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.generation.modes import GenerationMode

from tests.conftest import AUTH, Client

MAX_EXAMPLES = 10


def seed(client: Client) -> dict[str, str]:
    """One row of every kind, by the path parameter (or collection) that names it."""
    def made(path: str, body: dict[str, Any]) -> dict[str, Any]:
        r = client.post(path, json=body)
        assert r.status_code == 201, r.text
        data: dict[str, Any] = r.json["data"]
        return data

    project = made("/api/projects", {"name": "Seeded"})
    goal = made("/api/goals", {"title": "Seeded goal", "metric": "m", "targetValue": 1, "projectId": project["id"]})
    label = made("/api/labels", {"name": "seeded", "color": "#000000"})
    issue = made("/api/issues", {"title": "Seeded", "type": "task", "status": "todo", "projectId": project["id"],
                                 "labelIds": [label["id"]]})
    other = made("/api/issues", {"title": "Other", "type": "task"})
    relation = made(f"/api/issues/{issue['id']}/relations", {"type": "related", "relatedIssueId": other["id"]})
    made(f"/api/issues/{issue['id']}/comments", {"body": "Seeded", "authorName": "t", "authorType": "human"})
    signal = made("/api/signals", {"source": "s", "type": "t", "severity": "low", "payload": {"a": 1}})["signal"]
    template = made("/api/templates", {"slug": "seeded", "name": "Seeded", "content": "Hi {{issue.title}}"})
    key = made("/api/keys", {"name": "seeded"})
    claim = client.get("/api/dispatch/next").json["claim"]
    template = client.get(f"/api/templates/{template['id']}").json["data"]
    return {"issue_id": issue["id"], "label_id": label["id"], "relation_id": relation["id"],
            "signal_id": signal["id"], "template_id": template["id"], "key_id": key["id"],
            "version_id": template.get("activeVersionId") or "", "session_id": claim["sessionId"],
            "projects": project["id"], "goals": goal["id"], "labels": label["id"]}


def path_parameters(path: str, ids: dict[str, str]) -> dict[str, str]:
    params = {name: value for name, value in ids.items() if "{" + name + "}" in path}
    if "{row_id}" in path:
        params["row_id"] = ids[path.split("/")[2]]
    return params


CONFORMANCE = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def test_no_operation_of_the_openapi_document_answers_a_server_error(app: Any, client: Client) -> None:
    failures = run_all(app, client, [not_a_server_error])
    assert not failures, "\n\n".join(failures)


def test_every_answer_has_a_documented_status_content_type_and_schema(app: Any, client: Client) -> None:
    failures = run_all(app, client, CONFORMANCE)
    assert not failures, "\n\n".join(failures)


def run_all(app: Any, client: Client, checks: list[Any]) -> list[str]:
    """Every operation, schema-valid then schema-violating cases; the failures, one line each."""
    ids = seed(client)
    schema = schemathesis.openapi.from_wsgi("/api/openapi.json", app)
    # /health/ready answers 503 by design here: no worker runs beside this in-process app
    # (tests/test_health_ready.py covers its rule).
    operations = sorted((op for op in (result.ok() for result in schema.get_all_operations())
                         if op.path != "/health/ready"),
                        key=lambda op: (op.method.upper() == "DELETE", op.path))
    assert len(operations) > 40
    failures: list[str] = []

    for operation in operations:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            strategy = operation.as_strategy(mode, path_parameters=path_parameters(operation.path, ids) or None)
            where = f"{operation.label} [{mode}]"

            @given(case=strategy)
            @settings(max_examples=MAX_EXAMPLES, derandomize=True, deadline=None, database=None,
                      phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
            def run(case: Any) -> None:
                try:
                    case.call_and_validate(headers=AUTH, checks=checks)
                except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - collect every failure (schemathesis
                    # raises a FailureGroup, a BaseExceptionGroup, when one case fails several checks)
                    if not failures or not failures[-1].startswith(where):  # noqa: B023 - called right here
                        failures.append(f"{where}: {str(exc)[:600]}")  # noqa: B023 - one per operation and mode

            try:
                run()
            except Unsatisfiable:  # nothing to violate (no parameters, no body): negative mode is empty
                assert mode is GenerationMode.NEGATIVE
    return failures
