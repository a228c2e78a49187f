"""Resource modules; each exposes ``routes(api) -> list[Route]`` and, if it adds row schemas to the
OpenAPI document, ``ENTITIES`` (schema name -> row codec fields).

Subsystems append their module here (one line each) to join the app and the OpenAPI document.
"""

from api.resources import (
    comments,
    dashboard,
    dispatch,
    goals,
    issues,
    keys,
    labels,
    projects,
    relations,
    sessions,
    signals,
    system,
    webhooks,
)

ROUTE_MODULES = [system, issues, relations, comments, projects, goals, labels, keys, dispatch, sessions, signals, webhooks,
                 dashboard]

from api.resources import dashboard_prompts, prompt_reviews, templates  # noqa: E402  (prompt engine)

ROUTE_MODULES += [templates, prompt_reviews, dashboard_prompts]
