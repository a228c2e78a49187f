"""Handlebars rendering on pybars3: no HTML escaping, safe lookups, write-time checks.

pybars3 compiles a template into a Python module whose code calls ``prepare(value, escape)``
and ``resolve(context, *path)`` from its module globals. Rather than patching pybars
globally, every module we compile gets its own ``prepare`` (never escapes, prints values as
Handlebars.js would) and ``resolve`` (a bad path renders empty instead of raising). That is
the one place escaping is turned off, and it cannot leak into other pybars users.

pybars' ``Compiler`` keeps its code builder in a class attribute, so compiling is not
thread-safe: every parse and compile runs under :data:`COMPILE_LOCK`. Rendering a compiled
template is pure and runs without the lock.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Mapping
from functools import cache
from importlib import resources
from types import ModuleType
from typing import Any

import orjson
from pybars import Compiler, PybarsError, Scope, strlist
from pybars import _compiler as pybars_compiler

from loop.prompts.fields import TRIPLE_BRACE_MESSAGE
from loop.tunables import TEMPLATE_CACHE_LIMIT as _CACHE_LIMIT

COMPILE_LOCK = threading.Lock()

Renderer = Callable[..., Any]

PARTIAL_NAMES = (
    "api_reference", "review_instructions", "parent_context", "sibling_context", "project_and_goal_context",
)
PRIORITY_LABELS = {0: "none", 1: "urgent", 2: "high", 3: "medium", 4: "low"}
#: Helpers pybars provides itself; ``blockHelperMissing``/``helperMissing`` are internal.
BUILTIN_HELPERS = frozenset(("if", "unless", "each", "with", "lookup", "log"))


class TemplateError(Exception):
    """Template source that cannot be accepted, with a message naming the problem."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# ---------------------------------------------------------------------------- helpers
def _plain(value: Any) -> Any:
    """JSON-ready form of a value pybars may hand a helper (``Scope`` wraps block contexts)."""
    if isinstance(value, Scope):
        return _plain(value.context)
    if isinstance(value, strlist):
        return str(value)
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def json_helper(this: Any, *args: Any, **kwargs: Any) -> str:
    """``{{json value}}``: pretty JSON, 2-space indent; nothing for a missing value."""
    if not args or args[0] is None:
        return ""
    return orjson.dumps(_plain(args[0]), option=orjson.OPT_INDENT_2, default=str).decode()


def priority_label_helper(this: Any, *args: Any, **kwargs: Any) -> str:
    """``{{priority_label n}}``: 1 urgent, 2 high, 3 medium, 4 low, 0 none, else unknown."""
    value = args[0] if args else None
    if isinstance(value, bool) or not isinstance(value, int | float) or value != int(value):
        return "unknown"
    return PRIORITY_LABELS.get(int(value), "unknown")


def each_helper(this: Any, options: Mapping[str, Any], context: Any) -> Any:
    """pybars' ``each`` with the same scopes, joining each item's output once.

    pybars' own grows a ``strlist`` with every item's output, which walks it element by element
    (recursively, one call per string): most of a ``{{#each siblings}}``. A block's output holds
    only strings, so one ``join`` per item gives the same text.
    """
    try:
        last = len(context) - 1
        if last < 0:
            raise IndexError
    except (TypeError, IndexError):
        return options["inverse"](this)
    keyed = hasattr(context, "keys")
    fn, root = options["fn"], options["root"]
    out: list[str] = []
    for index, item in enumerate(context):
        key = None
        if keyed:
            key, item = item, context[item]
        scope = Scope(item, this, root, index=index, first=index == 0, last=index == last, key=key)
        try:  # noqa: SIM105 - per item: a suppress() context costs more than the item
            # pybars skips an item whose block raises TypeError ({{^each things}}): so do we
            out.append("".join(fn(scope)))
        except TypeError:
            pass
    return "".join(out)


HELPERS: dict[str, Callable[..., Any]] = {"json": json_helper, "priority_label": priority_label_helper}
KNOWN_HELPERS = BUILTIN_HELPERS | frozenset(HELPERS)
#: What a render is given: ours, and pybars' ``each`` replaced by a faster equivalent.
RENDER_HELPERS: dict[str, Callable[..., Any]] = {**HELPERS, "each": each_helper}


# ---------------------------------------------------------------------------- output
def _text(value: Any) -> str:
    """How Handlebars.js prints a value, except that objects print as JSON (more useful)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, Scope):
        return _text(value.context)
    if isinstance(value, list | tuple):
        return ",".join(_text(v) for v in value)
    if isinstance(value, Mapping):
        return orjson.dumps(_plain(value), default=str).decode()
    return str(value)


def _prepare(value: Any, should_escape: bool) -> Any:
    """Replaces pybars' ``prepare`` in our compiled modules: never HTML-escapes."""
    if type(value) is str:  # most values: nothing to do
        return value
    if isinstance(value, strlist):
        return value
    return _text(value)


class _Output(strlist):  # type: ignore[misc]
    """pybars' output buffer with a flat ``grow``.

    pybars' ``strlist.grow`` walks nested output element by element, recursively, for every
    block and partial: most of a render's time. Every strlist already holds only strings
    (``grow`` flattens), so a nested one can be joined in one step instead.
    """

    def grow(self, thing: Any) -> None:
        if type(thing) is str:
            self.append(thing)
        elif isinstance(thing, list):
            self.append("".join(thing))
        else:
            super().grow(thing)


_MISSING = object()


def _resolve(context: Any, *segments: str) -> Any:
    """pybars' ``resolve``, but a path that does not fit the data is missing, not an error
    (``{{siblings.9.title}}`` with 3 siblings, ``{{siblings.first}}``).

    A render resolves a path per expression (~150 a prompt), so the common steps are taken
    here: a plain name found in a dict, or in the dict under a block's ``Scope`` (partials nest
    one ``Scope`` in another) without overrides; the empty segments between dotted names are
    skipped as pybars skips them. Anything else (``@index``, ``this``, a list index,
    ``length``, a name the dict lacks, which pybars then looks up as an attribute) goes to pybars
    from that segment on, so the result is pybars' own.
    """
    done = 0
    if segments != ("",):  # pybars' special case: a bare "this" path
        for name in segments:
            if context is None:
                return None
            if not name:
                done += 1
                continue
            if name[0] == "@" or name == "this":
                break
            inner = context
            while type(inner) is Scope and not inner.overrides:
                inner = inner.context
            if type(inner) is not dict:
                break
            value = inner.get(name, _MISSING)
            if value is _MISSING:
                break
            context = value
            done += 1
        else:
            return context
    try:
        return pybars_compiler.resolve(context, *segments[done:])
    except (ValueError, IndexError, TypeError, KeyError):
        return None


# ---------------------------------------------------------------------------- compiler
_STANDALONE = re.compile(
    # A block, inverted block, else, comment or partial tag alone on its line disappears with
    # the line (Handlebars "standalone" rule; pybars only knows it for blocks and comments).
    r"~}}\s*|\s*{{~|"
    r"(?<=\n)([ \t]*{{(#[^{}]+|\^[^{}]+|/[^{}]+|![^{}]+|>[^{}]+|else|\^)}}[ \t]*)+\r?\n|"
    r"^([ \t]*{{(#[^{}]+|\^[^{}]+|![^{}]+|>[^{}]+)}}[ \t]*)+\r?\n|"
    # (\Z, not $: "$" also matches before a final newline and would eat the blank line above)
    r"\r?\n([ \t]*{{(/[^{}]+|![^{}]+)}}[ \t]*)+\Z"
)
_CLEANUP = re.compile(r"(?<={{)~|~(?=}})|(?<=}})[ \t]+(?={{)")


class _Compiler(Compiler):  # type: ignore[misc]
    def whitespace_control(self, source: str) -> str:
        return str(_STANDALONE.sub(lambda m: _CLEANUP.sub("", m.group(0).strip()), source))


_COMPILER = _Compiler()


def _position(source: str, pos: int) -> str:
    line = source.count("\n", 0, pos) + 1
    col = pos - (source.rfind("\n", 0, pos) + 1) + 1
    near = source[pos:pos + 30].split("\n")[0]
    return f"line {line}, column {col} (near {near!r})"


def _parse(source: str) -> list[Any]:
    """The pybars syntax tree of ``source``; caller holds :data:`COMPILE_LOCK`."""
    processed = _COMPILER.whitespace_control(source)
    parser = _COMPILER._handlebars(processed)
    tree, _ = parser.apply("template")
    # pybars checks the furthest point the parser *tried*, which lets an unclosed block
    # through; what was actually consumed is the input position.
    pos = parser.input.position
    if pos < len(processed):
        # Locate the problem in the text the author wrote (standalone-line removal shifts lines).
        raw = _COMPILER._handlebars(source)
        raw.apply("template")
        where = _position(source, raw.input.position) if raw.input.position < len(source) else _position(processed, pos)
        raise TemplateError(f"Template does not compile: unexpected or unclosed tag at {where}")
    return list(tree)


def _build(tree: list[Any]) -> Renderer:
    """Python code for a parsed tree, executed into a private module whose ``prepare`` and
    ``resolve`` are ours; caller holds :data:`COMPILE_LOCK` (pybars' code builder is shared).

    This is ``pybars.Compiler.compile`` minus its second parse and its ``sys.modules`` entry
    (we hold the function; the module goes when the cache entry does).
    """
    builder = _COMPILER._compiler.globals["builder"]
    builder._reset()
    try:
        container = _COMPILER._compiler(tree).apply("compile")[0]
    except PybarsError as exc:
        raise TemplateError(f"Template does not compile: {exc}") from None
    module = ModuleType("loop_prompt_template")
    exec(compile(container.full_code, "<prompt template>", "exec", dont_inherit=True), module.__dict__)
    module.__dict__["prepare"] = _prepare
    module.__dict__["resolve"] = _resolve
    module.__dict__["strlist"] = _Output
    return module.__dict__[container.name]  # type: ignore[no-any-return]


def compile_template(source: str) -> Renderer:
    """Compile ``source`` (thread-safe) into a render function with escaping turned off."""
    with COMPILE_LOCK:
        return _build(_parse(source))


_CACHE: dict[str, Renderer] = {}


def _remember(source: str, fn: Renderer) -> None:
    if len(_CACHE) >= _CACHE_LIMIT:
        _CACHE.clear()
    _CACHE[source] = fn


def compile_cached(source: str) -> Renderer:
    """:func:`compile_template` memoised on the source text: compiling costs far more than
    rendering (pybars parses with OMeta), and equal sources compile to equal functions."""
    fn = _CACHE.get(source)
    if fn is None:
        # Checked again under the lock: threads that miss together compile once, not once each.
        with COMPILE_LOCK:
            fn = _CACHE.get(source)
            if fn is None:
                fn = _build(_parse(source))
                _remember(source, fn)
    return fn


def render(fn: Renderer, context: Mapping[str, Any], partials: Mapping[str, Renderer]) -> str:
    return str(fn(dict(context), helpers=RENDER_HELPERS, partials=dict(partials)))


# ---------------------------------------------------------------------------- validation
def _walk(nodes: list[Any], problems: list[str], partials: frozenset[str]) -> None:
    for node in nodes:
        if not isinstance(node, tuple) or not node:
            continue
        kind = node[0]
        if kind in ("expand", "escapedexpand"):
            path, args = node[1], node[2]
            segments = path[1]
            if args and len(segments) == 1:
                name = segments[0]
                if name == "else":
                    problems.append("'{{else if ...}}' is not supported; nest an {{#if}} inside {{else}} instead")
                elif name not in KNOWN_HELPERS:
                    problems.append(f"unknown helper '{name}'")
            _walk_args(args, problems)
        elif kind in ("block", "invertedblock"):
            symbol, args, body, alt = node[1], node[2], node[3], node[4]
            if args and symbol not in KNOWN_HELPERS:
                problems.append(f"unknown block helper '{symbol}'")
            _walk_args(args, problems)
            _walk(list(body or [])[1:], problems, partials)
            _walk(list(alt or [])[1:], problems, partials)
        elif kind == "partial":
            name, args = node[1], node[2]
            if name[0] != "literalparam":
                problems.append("dynamic partials ({{> (expression)}}) are not supported")
            else:
                partial = str(name[1]).strip("\"'")
                if partial not in partials:
                    problems.append(f"unknown partial '{partial}' (known partials: {', '.join(sorted(partials))})")
            _walk_args(args, problems)
        elif kind == "rawblock":
            problems.append("raw blocks ({{{{raw}}}}) are not supported")


def _walk_args(args: list[Any], problems: list[str]) -> None:
    for arg in args or []:
        if not isinstance(arg, tuple):
            continue
        if arg[0] == "subexpr":
            segments = arg[1][1]
            name = segments[0] if len(segments) == 1 else ".".join(s for s in segments if s)
            if name not in KNOWN_HELPERS:
                problems.append(f"unknown helper '{name}'")
            _walk_args(arg[2], problems)
        elif arg[0] == "kwparam":
            _walk_args([arg[2]], problems)


def validate(source: str, partials: frozenset[str] = frozenset(PARTIAL_NAMES)) -> Renderer:
    """Raise :class:`TemplateError` unless ``source`` compiles and uses only known partials and
    helpers (what would otherwise fail only when an agent is handed the prompt); returns the
    compiled template."""
    if "{{{" in source:
        raise TemplateError(TRIPLE_BRACE_MESSAGE)
    with COMPILE_LOCK:
        tree = _parse(source)
        problems: list[str] = []
        _walk(tree[1:], problems, partials)
        if problems:
            raise TemplateError("Template is invalid: " + "; ".join(dict.fromkeys(problems)))
        fn = _build(tree)
    _remember(source, fn)
    return fn


# ---------------------------------------------------------------------------- seeds
def seed_text(*parts: str) -> str:
    """A file under ``loop/prompts/seeds``."""
    return resources.files("loop.prompts").joinpath("seeds", *parts).read_text(encoding="utf-8")


@cache
def partials() -> dict[str, Renderer]:
    """The shared partials, compiled once per process."""
    compiled: dict[str, Renderer] = {}
    for name in PARTIAL_NAMES:
        compiled[name] = validate(seed_text("partials", f"{name}.hbs"))
    return compiled
