"""Prompt experiments (issue 17): the deterministic split, the evidence, the decision rule with an
injected clock and scripted outcomes, the atomic switch under concurrent dispatch, render safety."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import pytest

from loop.clock import FrozenClock
from loop.errors import BusinessRuleError, Conflict
from loop.prompts import experiments as ex
from loop.prompts.fields import TEMPLATE, VERSION
from loop.prompts.history import SYSTEM_ACTOR
from loop.store import RedisStore
from tests.conftest import Client, keys_of
from workers import runner
from workers.experiments import decide_all

ACTIVE_CONTENT = "Active prompt for {{issue.title}}"
CANDIDATE_CONTENT = "Candidate prompt for {{issue.title}}"


def make_template(store: RedisStore, share: int | None = 20, auto: bool = True) -> tuple[str, str, str]:
    """A task template (specificity 90) with an active version and, with ``share``, a candidate."""
    t = store.prompts.templates.create({"slug": f"exp-{uuid.uuid4().hex[:6]}", "name": "exp",
                                        "conditions": {"type": "task"}, "specificity": 90})
    versions = store.prompts.versions
    active = versions.create(t["id"], {"content": ACTIVE_CONTENT, "authorType": "human", "authorName": "h"})
    cand = versions.create(t["id"], {"content": CANDIDATE_CONTENT, "authorType": "agent", "authorName": "a"})
    if share is not None:
        store.prompts.experiments.set_candidate(t["id"], cand["id"], share, auto, "key:test")
    return t["id"], active["id"], cand["id"]


def script(store: RedisStore, version_id: str, completed: int, failed: int) -> None:
    """Scripted outcomes: the counters dispatch keeps when sessions end."""
    store.r.hset(store.keys.dispatch_version(version_id),
                 mapping={"dispatched": completed + failed, "completed": completed, "failed": failed})


def template_row(store: RedisStore, template_id: str) -> dict[str, Any]:
    return store.prompts.templates.get_live(template_id)


def status(store: RedisStore, version_id: str) -> str:
    return str(store.prompts.versions.get(version_id)["status"])


# ---------------------------------------------------------------------- the split
def test_the_split_is_deterministic_and_close_to_the_share_over_many_issues() -> None:
    issues = [f"iss_{i:06d}" for i in range(10_000)]
    template = {"id": "tpl_x", "candidateVersionId": "ver_c", "candidateShare": 20}
    chosen = [ex.candidate_for(template, i) for i in issues]
    assert chosen == [ex.candidate_for(template, i) for i in issues]  # a re-claim sees the same version
    share = sum(1 for c in chosen if c == "ver_c") / len(issues)
    assert 0.18 < share < 0.22
    # Another template splits the same issues differently (the hash includes the template).
    other = [ex.candidate_for({**template, "id": "tpl_y"}, i) for i in issues]
    assert chosen != other
    assert ex.candidate_for({**template, "candidateVersionId": None}, issues[0]) is None


def test_a_reclaimed_issue_is_handed_the_same_version_and_meta_and_session_record_it(store: RedisStore) -> None:
    tid, active, cand = make_template(store, share=50)
    seen: dict[str, str] = {}
    for n in range(30):
        issue = store.issues.create({"title": f"t{n}", "type": "task", "status": "todo"})
        got = store.dispatch.next("agent")
        assert got is not None and got["issue"]["id"] == issue["id"]
        expected = cand if ex.candidate_for(template_row(store, tid), issue["id"]) else active
        assert got["meta"]["versionId"] == expected
        assert got["prompt"].startswith("Candidate" if expected == cand else "Active")
        session = store.r.hgetall(store.keys.session(got["claim"]["sessionId"]))
        assert session["versionId"] == expected
        store.issues.update(issue["id"], {"status": "todo"})  # released: claim it again
        again = store.dispatch.next("agent")
        assert again is not None and again["meta"]["versionId"] == expected
        seen[issue["id"]] = expected
        store.issues.update(issue["id"], {"status": "done"})
    assert {active, cand} == set(seen.values())


# ---------------------------------------------------------------------- evidence
def test_evidence_counts_sessions_median_duration_and_mean_review_score(store: RedisStore, clock: FrozenClock
                                                                        ) -> None:
    tid, active, cand = make_template(store, share=50)
    durations = {active: [], cand: []}  # type: dict[str, list[int]]
    for n in range(12):
        store.issues.create({"title": f"t{n}", "type": "task", "status": "todo"})
        got = store.dispatch.next("agent")
        assert got is not None
        clock.advance(60 * (n + 1))
        store.issues.update(got["issue"]["id"], {"status": "done" if n % 3 else "canceled"})
        if n % 3:
            durations[got["meta"]["versionId"]].append(60_000 * (n + 1))
    for score in (5, 4, 3):
        store.prompts.reviews.create({"versionId": cand, "issueId": "iss_x", "clarity": score,
                                      "completeness": score, "relevance": score, "authorType": "agent"})
    report = store.prompts.experiments.report(tid, 30)
    for side, vid in (("active", active), ("candidate", cand)):
        e = report[side]
        assert e["versionId"] == vid
        assert e["completed"] == len(durations[vid]) and e["ended"] == e["completed"] + e["failed"]
        assert e["claimed"] == e["ended"]
        want = sorted(durations[vid])
        mid = len(want) // 2
        median = (want[mid] if len(want) % 2 else (want[mid - 1] + want[mid]) / 2) if want else None
        assert e["medianDurationMs"] == median
    assert (report["candidate"]["reviewCount"], report["candidate"]["meanReviewScore"]) == (3, 4.0)
    assert report["verdict"]["outcome"] == "not_enough_data" and report["verdict"]["alpha"] == 0.05


def test_the_duration_sample_is_capped(store: RedisStore) -> None:
    from loop.dispatch.sessions import stage_close
    from loop.tunables import EXPERIMENT_DURATION_SAMPLE
    for n in range(EXPERIMENT_DURATION_SAMPLE + 25):
        pipe = store.r.pipeline(transaction=True)
        stage_close(pipe, store.keys, {"id": f"ses_{n}", "issueId": "iss_1", "versionId": "ver_v",
                                       "claimedAt": "0"}, "completed", 1000 + n)
        pipe.execute()
    assert store.r.zcard(store.keys.version_durations("ver_v")) == EXPERIMENT_DURATION_SAMPLE


# ---------------------------------------------------------------------- the decision rule
def evidence(completed: int, ended: int, reviews: int = 0, mean: float | None = None) -> ex.Evidence:
    return ex.Evidence("v", 1, ended, completed, ended - completed, 0, 0, ended,
                       completed / ended if ended else None, None, reviews, mean, 0)


@pytest.mark.parametrize(("cand", "active", "action", "outcome"), [
    (evidence(27, 30), evidence(18, 30), "promote", "better"),
    (evidence(10, 30), evidence(24, 30), "withdraw", "worse"),
    (evidence(29, 29), evidence(10, 300), "wait", "not_enough_data"),
    (evidence(20, 30), evidence(19, 30), "wait", "tie"),
    (evidence(27, 30, 5, 3.0), evidence(18, 30, 5, 4.0), "wait", "review_worse"),
    (evidence(27, 30, 2, 1.0), evidence(18, 30, 5, 4.0), "promote", "better"),  # 2 reviews prove nothing
])
def test_the_decision_rule_promotes_withdraws_waits_for_data_and_holds_a_tie(
        cand: ex.Evidence, active: ex.Evidence, action: str, outcome: str) -> None:
    verdict = ex.decide(active, cand, 30, auto_promote=True)
    assert (verdict.action, verdict.outcome) == (action, outcome)
    assert verdict.statement


def test_without_auto_promote_a_better_candidate_waits_for_a_person() -> None:
    verdict = ex.decide(evidence(18, 30), evidence(27, 30), 30, auto_promote=False)
    assert (verdict.action, verdict.outcome, verdict.significant) == ("wait", "awaiting_person", True)


def test_the_z_score_is_the_pooled_two_proportion_statistic() -> None:
    assert ex.z_score(27, 30, 18, 30) == pytest.approx(0.3 / (0.75 * 0.25 * 2 / 30) ** 0.5, abs=1e-3)  # 2.68
    assert ex.z_score(30, 30, 30, 30) == 0.0
    assert ex.z_score(0, 0, 3, 4) is None


def test_the_worker_promotes_a_better_candidate_and_records_the_figures(store: RedisStore, clock: FrozenClock
                                                                        ) -> None:
    tid, active, cand = make_template(store)
    script(store, active, 18, 12)
    script(store, cand, 27, 3)
    clock.advance(3600)
    verdicts = decide_all(store, 30)
    assert verdicts[tid].action == "promote"
    row = template_row(store, tid)
    assert (row["activeVersionId"], row["candidateVersionId"], row["candidateShare"]) == (cand, None, None)
    assert (status(store, cand), status(store, active)) == ("active", "retired")
    entry = store.prompts.versions.history(tid, 10, 0)[0][0]
    assert (entry["action"], entry["actor"], entry["fromVersionId"], entry["toVersionId"]) == (
        "promote", SYSTEM_ACTOR, active, cand)
    assert entry["at"] == "2026-02-20T13:00:00.000Z"  # the injected clock
    assert entry["figures"]["candidate"]["completed"] == 27 and entry["figures"]["z"] > ex.Z_CRITICAL


def test_the_worker_withdraws_a_clearly_worse_candidate(store: RedisStore) -> None:
    tid, active, cand = make_template(store, auto=False)
    script(store, active, 24, 6)
    script(store, cand, 10, 20)
    assert decide_all(store, 30)[tid].action == "withdraw"
    row = template_row(store, tid)
    assert (row["activeVersionId"], row["candidateVersionId"]) == (active, None)
    assert status(store, cand) == "draft"
    entry = store.prompts.versions.history(tid, 10, 0)[0][0]
    assert (entry["action"], entry["toVersionId"], entry["figures"]["outcome"]) == ("withdraw", cand, "worse")


@pytest.mark.parametrize(("cand_done", "cand_ended"), [(25, 29), (20, 30)], ids=["not-enough-data", "tie"])
def test_the_worker_changes_nothing_without_enough_data_or_on_a_tie(store: RedisStore, cand_done: int,
                                                                     cand_ended: int) -> None:
    tid, active, cand = make_template(store)
    script(store, active, 19, 11)
    script(store, cand, cand_done, cand_ended - cand_done)
    before = template_row(store, tid)
    history_before = store.prompts.versions.history(tid, 10, 0)[1]
    assert decide_all(store, 30)[tid].action == "wait"
    assert template_row(store, tid) == before
    assert store.prompts.versions.history(tid, 10, 0)[1] == history_before


def test_a_decision_on_a_candidate_that_changed_meanwhile_is_dropped(store: RedisStore) -> None:
    tid, active, cand = make_template(store)
    with pytest.raises(Conflict):
        store.prompts.versions.promote(tid, cand, actor=SYSTEM_ACTOR, expect_candidate="ver_someone_else")
    assert template_row(store, tid)["activeVersionId"] == active


# ---------------------------------------------------------------------- render safety
def broken_candidate(store: RedisStore) -> tuple[str, str, str]:
    """A candidate whose content was written around the API and does not compile."""
    tid, active, cand = make_template(store, share=None)
    store.r.hset(store.keys.row(VERSION, cand), "content", "{{#if issue.title}}never closed")
    store.r.hset(store.keys.row(TEMPLATE, tid), mapping={"candidateVersionId": cand, "candidateShare": "50",
                                                          "autoPromote": "1"})
    store.r.incr(store.keys.prompts_generation())
    return tid, active, cand


def test_a_candidate_that_fails_to_render_never_becomes_active(store: RedisStore) -> None:
    tid, active, cand = broken_candidate(store)
    template = template_row(store, tid)
    n = 0
    while True:  # an issue in the candidate's share
        issue = store.issues.create({"title": f"t{n}", "type": "task", "status": "todo"})
        n += 1
        if ex.candidate_for(template, issue["id"]):
            break
        store.issues.update(issue["id"], {"status": "done"})
    got = store.dispatch.next("agent")
    assert got is not None and got["meta"]["versionId"] == active  # the agent still gets a prompt
    assert got["prompt"].startswith("Active")
    script(store, active, 10, 20)
    script(store, cand, 30, 0)  # even with better figures
    assert decide_all(store, 30)[tid].outcome == "render_failed"
    assert template_row(store, tid)["activeVersionId"] == active and status(store, cand) == "draft"
    with pytest.raises(BusinessRuleError, match="does not render"):
        store.prompts.versions.promote(tid, cand)


def test_setting_a_candidate_that_does_not_compile_is_a_422_that_changes_nothing(store: RedisStore,
                                                                                 client: Client) -> None:
    tid, active, cand = make_template(store, share=None)
    store.r.hset(store.keys.row(VERSION, cand), "content", "{{#each x}}open")
    before = keys_of(store)
    resp = client.post(f"/api/templates/{tid}/candidate", json={"versionId": cand, "share": 10})
    assert resp.status_code == 422 and "does not render" in resp.json["error"]
    assert keys_of(store) == before


# ---------------------------------------------------------------------- the atomic switch
def test_a_promotion_commits_although_a_dispatch_counts_usage_during_every_attempt(
        store: RedisStore, monkeypatch: pytest.MonkeyPatch) -> None:
    tid, active, cand = make_template(store, share=10)
    rows = store.prompts.versions.s
    real_now = rows.now
    raced: list[int] = []

    def now_while_dispatching() -> int:
        # Called between the transaction's reads and its EXEC: a dispatch of each version lands there.
        for version_id in (active, cand):
            store.r.hincrby(store.keys.row(VERSION, version_id), "usageCount", 1)
        raced.append(1)
        return real_now()

    monkeypatch.setattr(rows, "now", now_while_dispatching)
    store.prompts.experiments.promote_candidate(tid, "key:test")
    monkeypatch.undo()
    assert raced
    assert [status(store, v) for v in (active, cand)] == ["retired", "active"]
    assert store.prompts.versions.get(active)["usageCount"] == len(raced)


def test_concurrent_dispatch_sees_the_old_or_the_new_active_version_never_a_mix(store: RedisStore) -> None:
    tid, active, cand = make_template(store, share=10)
    script(store, active, 10, 20)
    script(store, cand, 28, 2)
    issues = [store.issues.create({"title": f"t{n}", "type": "task"}) for n in range(40)]
    outside = [i for i in issues if not ex.candidate_for(template_row(store, tid), i["id"])]
    seen: list[tuple[str, int, bool]] = []
    promoted = threading.Event()
    stop = threading.Event()
    errors: list[BaseException] = []

    def dispatcher() -> None:
        try:
            while not stop.is_set():
                for issue in outside:
                    after = promoted.is_set()
                    _, meta = store.prompts.render_for_dispatch(issue)
                    assert meta is not None
                    seen.append((meta["versionId"], meta["versionNumber"], after))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=dispatcher) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        assert decide_all(store, 30)[tid].action == "promote"
        promoted.set()
        seen_at_promotion = len(seen)
        while len(seen) < seen_at_promotion + 40 and not errors:  # a dead dispatcher must not hang the test
            threading.Event().wait(0.01)
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert not errors
    numbers = {active: 1, cand: 2}
    assert all(vid in numbers and numbers[vid] == number for vid, number, _ in seen)
    assert all(vid == cand for vid, _, after in seen if after)  # once switched, nobody sees the old one
    statuses = [status(store, v) for v in (active, cand)]
    assert statuses == ["retired", "active"]


# ---------------------------------------------------------------------- a person decides (API)
def test_a_person_sets_promotes_and_rolls_back_and_every_step_is_in_the_history(store: RedisStore,
                                                                                client: Client) -> None:
    tid, active, cand = make_template(store, share=None)
    resp = client.post(f"/api/templates/{tid}/candidate",
                          json={"versionId": cand, "share": 25, "autoPromote": True})
    assert resp.status_code == 200
    assert (resp.json["data"]["candidateVersionId"], resp.json["data"]["candidateShare"]) == (cand, 25)
    exp = client.get(f"/api/templates/{tid}/experiment").json["data"]
    assert exp["active"]["versionId"] == active and exp["candidate"]["versionId"] == cand
    assert exp["verdict"]["outcome"] == "not_enough_data" and "Not enough data" in exp["verdict"]["statement"]
    assert client.post(f"/api/templates/{tid}/candidate/promote").json["data"]["id"] == cand
    assert client.get(f"/api/templates/{tid}").json["data"]["candidateVersionId"] is None
    rolled = client.post(f"/api/templates/{tid}/rollback")
    assert rolled.status_code == 200 and rolled.json["data"]["id"] == active
    history = client.get(f"/api/templates/{tid}/history").json
    assert [e["action"] for e in history["data"]] == ["rollback", "promote", "candidate_set"]
    assert history["total"] == 3 and all(e["actor"].startswith("key:") for e in history["data"])


def test_a_person_withdraws_or_clears_a_candidate(store: RedisStore, client: Client) -> None:
    tid, active, cand = make_template(store)
    assert client.post(f"/api/templates/{tid}/candidate/withdraw").status_code == 200
    assert template_row(store, tid)["candidateVersionId"] is None
    again = client.post(f"/api/templates/{tid}/candidate/withdraw")
    assert again.status_code == 422 and again.json["error"] == "Template has no candidate version"
    client.post(f"/api/templates/{tid}/candidate", json={"versionId": cand, "share": 5})
    assert client.delete(f"/api/templates/{tid}/candidate").json["data"]["candidateShare"] is None


@pytest.mark.parametrize(("body", "field"), [
    ({"versionId": "ver_x", "share": 0}, "share"),
    ({"versionId": "ver_x", "share": 51}, "share"),
    ({"share": 10}, "versionId"),
    ({"versionId": "ver_x", "share": 10, "autoPromote": "yes"}, "autoPromote"),
])
def test_a_bad_candidate_body_is_a_400_naming_the_field_and_changes_nothing(
        store: RedisStore, client: Client, body: dict[str, Any], field: str) -> None:
    tid, _, _ = make_template(store, share=None)
    before = keys_of(store)
    resp = client.post(f"/api/templates/{tid}/candidate", json=body)
    assert resp.status_code == 400 and field in resp.text
    assert keys_of(store) == before


def test_the_active_version_cannot_be_its_own_candidate_and_rollback_needs_a_promotion(
        store: RedisStore, client: Client) -> None:
    tid, active, _ = make_template(store, share=None)
    before = keys_of(store)
    resp = client.post(f"/api/templates/{tid}/candidate", json={"versionId": active, "share": 10})
    assert resp.status_code == 422 and resp.json["error"] == "Version is already active"
    resp = client.post(f"/api/templates/{tid}/rollback")
    assert resp.status_code == 422 and "Nothing to roll back" in resp.json["error"]
    assert keys_of(store) == before


def test_the_worker_runs_the_experiment_sweep_periodically() -> None:
    from workers import experiments
    assert (experiments.EXPERIMENT_SWEEP_SECONDS, experiments.sweep) in runner.PERIODIC


# ---------------------------------------------------------------------- the improvement loop closes
def test_the_improvement_task_says_how_to_start_the_new_version_as_the_candidate(store: RedisStore,
                                                                                 client: Client) -> None:
    import json
    import re
    tid, active, _ = make_template(store, share=None)
    for _ in range(3):
        client.post("/api/prompt-reviews", json={"versionId": active, "issueId": "iss_x", "clarity": 1,
                                                 "completeness": 2, "relevance": 2, "authorType": "agent"})
    issue_id = store.r.get(store.keys.prompt_improvement(tid))
    description = client.get(f"/api/issues/{issue_id}").json["data"]["description"]
    command = re.search(r"-X POST \"[^\"]*(/api/templates/[^\"]+/candidate)\".* -d '([^']+)'", description)
    assert command is not None and command.group(1) == f"/api/templates/{tid}/candidate"
    new = store.prompts.versions.create(tid, {"content": "Better {{issue.title}}", "authorType": "agent",
                                               "authorName": "a"})
    body = json.loads(command.group(2).replace("<versionId>", new["id"]))
    resp = client.post(command.group(1), json=body)
    assert resp.status_code == 200 and resp.json["data"]["candidateVersionId"] == new["id"]
    assert resp.json["data"]["autoPromote"] is True and template_row(store, tid)["activeVersionId"] == active


def test_the_worked_example_of_docs_prompts_md_decides_as_written() -> None:
    week_one = ex.decide(evidence(90, 150), evidence(21, 31), 30, auto_promote=True)
    assert (week_one.outcome, week_one.z) == ("tie", pytest.approx(0.81, abs=0.01))
    week_three = ex.decide(evidence(180, 300, 40, 3.4), evidence(62, 75, 12, 4.3), 30, auto_promote=True)
    assert (week_three.action, week_three.z) == ("promote", pytest.approx(3.67, abs=0.01))
    assert "83% vs 60%, z = 3.67" in week_three.statement
    worse = ex.decide(evidence(90, 150), evidence(10, 30), 30, auto_promote=True)
    assert (worse.action, worse.z) == ("withdraw", pytest.approx(-2.68, abs=0.01))
