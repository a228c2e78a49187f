"""Rendering rules of contract 6.4: no escaping, helpers, partials, missing values, whitespace,
write-time validation, and a compiler that is safe to use from many threads."""

from __future__ import annotations

import threading

import pytest

from loop.prompts import engine
from loop.prompts.fields import TRIPLE_BRACE_MESSAGE


def render(source: str, context: dict[str, object] | None = None) -> str:
    return engine.render(engine.compile_template(source), context or {}, engine.partials())


# ---------------------------------------------------------------------------- escaping
def test_html_special_characters_in_values_come_out_verbatim() -> None:
    title = "<script>alert(\"x\")</script> & 'quotes' `ticks` > <"
    assert render("{{issue.title}}", {"issue": {"title": title}}) == title


def test_simple_names_and_ampersand_expressions_are_not_escaped_either() -> None:
    assert render("{{name}}|{{&name}}", {"name": "a&b<c>"}) == "a&b<c>|a&b<c>"


def test_json_payloads_keep_quotes_and_angle_brackets() -> None:
    out = render("{{json payload}}", {"payload": {"html": "<b>\"hi\" & 'bye'</b>"}})
    assert out == '{\n  "html": "<b>\\"hi\\" & \'bye\'</b>"\n}'


def test_values_inside_each_blocks_and_partials_are_not_escaped() -> None:
    out = render("{{#each items}}{{this}};{{/each}}{{> sibling_context}}",
                 {"items": ["<a>", "&"], "siblings": [{"number": 2, "status": "todo", "title": "x < y & z"}]})
    assert out.startswith("<a>;&;")
    assert "- #2 [todo] x < y & z" in out


def test_escaping_is_disabled_only_for_loop_templates_not_for_other_pybars_users() -> None:
    from pybars import Compiler

    assert Compiler().compile("{{x}}")({"x": "<&>"}) == "&lt;&amp;&gt;"
    assert render("{{x}}", {"x": "<&>"}) == "<&>"


# ---------------------------------------------------------------------------- values
def test_missing_values_render_empty() -> None:
    out = render("[{{nothing}}][{{issue.missing}}][{{a.b.c.d}}][{{list.9.title}}][{{list.first}}]",
                 {"issue": {}, "list": [{"title": "x"}]})
    assert out == "[][][][][]"


def test_null_values_render_empty_and_booleans_and_numbers_print_like_handlebars_js() -> None:
    out = render("{{a}}|{{b}}|{{c}}|{{d}}|{{e}}|{{f}}", {"a": None, "b": True, "c": False, "d": 3.0, "e": 0.25,
                                                         "f": ["x", "y"]})
    assert out == "|true|false|3|0.25|x,y"


def test_if_on_list_length_and_unless_last_work_as_in_the_seeds() -> None:
    src = "{{#if xs.length}}{{#each xs}}{{this}}{{#unless @last}}, {{/unless}}{{/each}}{{else}}none{{/if}}"
    assert render(src, {"xs": ["a", "b", "c"]}) == "a, b, c"
    assert render(src, {"xs": []}) == "none"


def test_block_tags_alone_on_a_line_are_removed_with_their_line() -> None:
    src = "start\n{{#if x}}\nyes\n{{else}}\nno\n{{/if}}\n{{#each xs}}\n- {{this}}\n{{/each}}\nend\n"
    assert render(src, {"x": True, "xs": [1, 2]}) == "start\nyes\n- 1\n- 2\nend\n"


def test_a_partial_alone_on_a_line_leaves_no_blank_line_when_it_renders_nothing() -> None:
    assert render("a\n{{> parent_context}}\nb\n", {"parent": None}) == "a\nb\n"


# ---------------------------------------------------------------------------- helpers
@pytest.mark.parametrize(("value", "label"), [(0, "none"), (1, "urgent"), (2, "high"), (3, "medium"), (4, "low"),
                                              (5, "unknown"), (-1, "unknown"), ("2", "unknown"), (None, "unknown")])
def test_priority_label_names_every_priority(value: object, label: str) -> None:
    assert render("{{priority_label p}}", {"p": value}) == label


def test_json_helper_pretty_prints_with_two_spaces_and_renders_nothing_for_missing_values() -> None:
    assert render("{{json v}}", {"v": {"a": [1, {"b": None}]}}) == (
        '{\n  "a": [\n    1,\n    {\n      "b": null\n    }\n  ]\n}')
    assert render("[{{json missing}}]") == "[]"
    assert render("{{json s}}", {"s": "text"}) == '"text"'


def test_json_of_this_inside_each_serialises_the_item() -> None:
    assert render("{{#each xs}}{{json this}}{{/each}}", {"xs": [{"k": 1}]}) == '{\n  "k": 1\n}'


# ---------------------------------------------------------------------------- partials
def test_all_five_partials_exist_and_render() -> None:
    assert set(engine.partials()) == set(engine.PARTIAL_NAMES)
    ctx = {
        "issue": {"id": "iss1", "number": 7, "title": "T"}, "loopUrl": "http://loop.test",
        "loopToken": "$LOOP_API_KEY", "followUpParentId": "iss1", "agentName": "agent",
        "meta": {"versionId": "ver1"},
        "parent": {"number": 1, "type": "plan", "status": "todo", "title": "P", "description": "pd",
                   "hypothesis": {"statement": "S", "confidence": 0.5, "validationCriteria": "V"}},
        "siblings": [{"number": 2, "status": "todo", "title": "Sib"}],
        "project": {"name": "Proj", "description": "pdesc", "status": "active", "health": "on_track"},
        "goal": {"title": "G", "status": "active", "metric": "m", "currentValue": 1, "targetValue": 2, "unit": "%"},
    }
    out = render("{{> parent_context}}{{> sibling_context}}{{> project_and_goal_context}}"
                 "{{> api_reference}}{{> review_instructions}}", ctx)
    for expected in ("#1 (plan, todo): P", "The parent's hypothesis: S", "- #2 [todo] Sib", "## Project: Proj",
                     "now 1%, target 2%", "http://loop.test/api/issues/iss1", "Bearer $LOOP_API_KEY",
                     '"versionId": "ver1"', '"issueId": "iss1"', '"authorType": "agent"'):
        assert expected in out


def test_context_partials_render_nothing_without_their_data() -> None:
    assert render("{{> parent_context}}{{> sibling_context}}{{> project_and_goal_context}}",
                  {"parent": None, "siblings": [], "project": None}) == ""


def test_api_reference_shows_claim_commands_only_when_the_issue_is_claimed() -> None:
    base = {"issue": {"id": "i"}, "loopUrl": "u", "loopToken": "t", "followUpParentId": "i"}
    assert "/heartbeat" not in render("{{> api_reference}}", base)
    claimed = render("{{> api_reference}}", {**base, "claim": {"sessionId": "ses9", "expiresAt": "2026-01-01"}})
    assert "u/api/dispatch/claims/ses9/heartbeat" in claimed
    assert "u/api/dispatch/claims/ses9/release" in claimed


# ---------------------------------------------------------------------------- validation
@pytest.mark.parametrize(("source", "fragment"), [
    ("{{#if x}}never closed", "does not compile"),
    ("{{/if}}", "does not compile"),
    ("hello {{", "does not compile"),
    ("line one\n{{#each xs}}{{/if}}", "line 2"),
    ("{{> nope}}", "unknown partial 'nope'"),
    ("{{> (dynamic)}}", "dynamic partials"),
    ("{{shout issue.title}}", "unknown helper 'shout'"),
    ("{{#ifEquals a b}}x{{/ifEquals}}", "unknown block helper 'ifEquals'"),
    ("{{json (upper x)}}", "unknown helper 'upper'"),
    ("{{#if a}}x{{else if b}}y{{/if}}", "else if"),
])
def test_invalid_content_is_rejected_naming_the_problem(source: str, fragment: str) -> None:
    with pytest.raises(engine.TemplateError) as err:
        engine.validate(source)
    assert fragment in err.value.message


def test_triple_braces_are_rejected_with_the_reference_message() -> None:
    with pytest.raises(engine.TemplateError) as err:
        engine.validate("Hi {{{issue.title}}}")
    assert err.value.message == TRIPLE_BRACE_MESSAGE


def test_valid_content_using_helpers_partials_and_block_sections_passes() -> None:
    engine.validate("{{json issue}} {{priority_label issue.priority}} {{#with parent}}{{title}}{{/with}} "
                    "{{#parent}}{{title}}{{/parent}} {{lookup issue 'title'}} {{> api_reference}}")


# ---------------------------------------------------------------------------- compiler
def test_compiling_from_many_threads_at_once_gives_correct_templates() -> None:
    errors: list[BaseException] = []
    results: dict[int, str] = {}

    def work(n: int) -> None:
        try:
            src = "".join(f"{{{{#if v{i}}}}}<{i}>{{{{/if}}}}" for i in range(n % 7 + 3)) + f"#{n} {{{{x}}}}"
            fn = engine.compile_template(src)
            results[n] = engine.render(fn, {**{f"v{i}": True for i in range(12)}, "x": n}, {})
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    for n, out in results.items():
        assert out == "".join(f"<{i}>" for i in range(n % 7 + 3)) + f"#{n} {n}"


def test_compiled_templates_do_not_accumulate_in_sys_modules() -> None:
    import sys

    before = len(sys.modules)
    for _ in range(20):
        engine.compile_template("{{x}}")
    assert len(sys.modules) <= before + 1


def _pybars_resolve(context: object, *segments: str) -> object:
    """What the engine resolved before its fast path: pybars' resolve, errors as missing."""
    from pybars import _compiler

    try:
        return _compiler.resolve(context, *segments)
    except (ValueError, IndexError, TypeError, KeyError):
        return None


def test_the_fast_path_resolves_every_path_exactly_like_pybars() -> None:
    from pybars import Scope

    data = {"issue": {"id": "i1", "title": "T", "hypothesis": None}, "siblings": [{"title": "s0"}, {"title": "s1"}],
            "count": 0, "flag": False, "empty": "", "this": "literal"}
    inner = Scope(data, data, data, index=3, first=True, last=False)
    contexts = [data, inner, Scope(inner, inner, data), Scope(data, inner, data, overrides={"issue": "over"}),
                Scope(Scope(data, data, data, overrides={"count": 7}), data, data), data["siblings"], None, "text"]
    paths = [("issue",), ("issue", "", "id"), ("issue", "", "missing"), ("issue", "", "hypothesis", "", "x"),
             ("siblings", "", "length"), ("siblings", "", "1", "", "title"), ("siblings", "", "9", "", "title"),
             ("siblings", "", "first"), ("count",), ("flag",), ("empty",), ("",), ("this",), ("@index",),
             ("@first",), ("@root", "", "count"), ("keys",), ("items",), ("length",), ("0",), ("nope", "", "deeper"),
             ("issue", "", "title", "", "upper")]
    for context in contexts:
        for path in paths:
            mine, theirs = engine._resolve(context, *path), _pybars_resolve(context, *path)
            if callable(theirs):  # a bound method: equal, not identical
                assert callable(mine) and mine == theirs, (context, path)
            else:
                assert mine == theirs and type(mine) is type(theirs), (context, path)


def test_the_each_helper_renders_exactly_like_pybars_each() -> None:
    source = ("{{#each xs}}[{{@index}}:{{@key}}:{{this}}{{#if @first}} first{{/if}}{{#if @last}} last{{/if}}"
              "{{#each ../ys}}<{{this}}>{{/each}}]{{else}}none{{/each}}")
    fn = engine.compile_template(source)
    for xs in ([], ["a"], ["a", "b", "c"], {"k1": "v1", "k2": "v2"}, {}, None, "str"):
        context = {"xs": xs, "ys": [1, 2]}
        theirs = str(fn(dict(context), helpers=engine.HELPERS, partials={}))
        assert engine.render(fn, context, {}) == theirs, xs


def test_threads_that_miss_the_cache_together_compile_a_source_once(monkeypatch: pytest.MonkeyPatch) -> None:
    builds: list[object] = []
    real = engine._build

    def counting(tree: object) -> engine.Renderer:
        builds.append(tree)
        return real(tree)

    monkeypatch.setattr(engine, "_build", counting)
    source = "Once per process: {{issue.title}} " + str(threading.get_ident())
    gate = threading.Barrier(6)
    out: list[engine.Renderer] = []

    def claim_like() -> None:
        gate.wait()
        out.append(engine.compile_cached(source))

    threads = [threading.Thread(target=claim_like) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(builds) == 1
    assert len({id(fn) for fn in out}) == 1


def test_a_warmed_process_renders_every_seeded_template_without_compiling(monkeypatch: pytest.MonkeyPatch) -> None:
    from loop.prompts import seeds

    seeds.warm()
    monkeypatch.setattr(engine, "_build", lambda tree: pytest.fail("compiled after warm()"))
    for seed in seeds.SEEDS:
        fn = engine.compile_cached(seed.content())
        assert engine.render(fn, {"issue": {"title": "t"}}, engine.partials())
