"""The WSGI application.

``create_app(store, clock, settings)`` builds the app around the object graph
(:class:`loop.runtime.Loop`, from :func:`loop.runtime.build`; tests call it directly). ``api.app:app`` is the gunicorn entry point: the only place that reads the
environment, resolved lazily on first access.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import falcon
from falcon.routing import CompiledRouter

from api import metrics, middleware, openapi, reference, replicas, request_log, ui
from api.http import Api, Route, install_error_handlers
from api.resources import ROUTE_MODULES
from loop import __version__, logs
from loop.clock import Clock, SystemClock
from loop.settings import Settings

if TYPE_CHECKING:
    from loop.runtime import Loop

OPENAPI_PATH = "/api/openapi.json"


def create_app(store: Loop, clock: Clock | None = None, settings: Settings | None = None) -> falcon.App[Any, Any]:
    """Build the Loop API around ``store`` (the graph of :func:`loop.runtime.build`)."""
    settings = settings or store.settings
    clock = clock or store.clock or SystemClock()
    api = Api(store, settings, clock)
    routes: list[Route] = []
    entities: dict[str, Mapping[str, str]] = {}
    for module in ROUTE_MODULES:
        routes.extend(module.routes(api))
        entities.update(getattr(module, "ENTITIES", {}))
    routes.extend(metrics.routes(api))
    routes.extend(reference.routes(api))
    # The OpenAPI document is served outside the route table (it describes it), so name it here.
    spec = openapi.document(routes, __version__, entities, settings.loop_url)
    openapi_resource = _OpenApi(spec)
    # The dashboard's pages (api/ui): outside the API's table, public to Bearer auth, guarded by ui.Gate.
    signer = ui.Signer(store)
    root = next(r.resource for r in routes if r.path == "/")
    ui_routes = ui.routes(api, signer, root)
    public = ([r.resource for r in routes if all(op.public or op.webhook for op in r.ops)] + [openapi_resource]
              + [resource for _, resource in ui_routes])
    webhooks = [r.resource for r in routes if any(op.webhook for op in r.ops)]
    secret_ops = [(r.resource, op.method) for r in routes for op in r.ops if op.secret]
    # One router shared by the app and the auth middleware: auth asks it which resource a path reaches.
    router = CompiledRouter()
    mw: list[Any] = [
            request_log.RequestLog(),  # first: its process_response runs last, seeing the final status
            middleware.Cors(settings.cors_origins),
            middleware.BodyLimit(settings.max_body_bytes, settings.webhook_max_body_bytes, router, webhooks),
            middleware.Auth(store.apikeys, router, public),
            replicas.ReplicaWait(store),  # before Idempotency: its process_response runs after it
            middleware.Idempotency(store.idempotency, settings.max_body_bytes, router, secret_ops),
            ui.Gate(signer),
    ]
    app: falcon.App[Any, Any] = falcon.App(middleware=mw, cors_enable=False, router=router)
    app.req_options.strip_url_path_trailing_slash = True
    app.req_options.auto_parse_qs_csv = False
    install_error_handlers(app)
    ui_paths = {path for path, _ in ui_routes}
    for route in routes:
        if route.path not in ui_paths:  # "/" is served by the dashboard's Home, which keeps its JSON
            app.add_route(route.path, route.resource)
    for path, resource in ui_routes:
        app.add_route(path, resource)
    app.add_route(OPENAPI_PATH, openapi_resource)
    return app


class _OpenApi:
    def __init__(self, spec: dict[str, Any]) -> None:
        import orjson

        self.body = orjson.dumps(spec)

    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = "application/json"
        resp.data = self.body


def app_from_env() -> falcon.App[Any, Any]:
    """Build the app from the process environment (gunicorn entry point)."""
    from loop.runtime import from_settings

    settings = Settings.from_env()
    logs.configure(settings.log_format)
    from loop.prompts import seeds

    store = from_settings(settings)
    seeds.warm()  # before the first request: see seeds.warm
    return create_app(store, store.clock, settings)


_app: falcon.App[Any, Any] | None = None


def __getattr__(name: str) -> Any:
    # Lazy so that importing api.app (tests, tooling) never reads the environment.
    global _app
    if name == "app":
        if _app is None:
            _app = app_from_env()
        return _app
    raise AttributeError(name)
