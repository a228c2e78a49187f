"""``GET /api/docs``: a human-readable API reference rendered from ``/api/openapi.json``.

A small self-contained page (inline CSS and JS, no CDN, no third-party renderer): it fetches the
document the server serves and lists every operation by tag with its parameters, request body and
responses, so the reference can never drift from the server.
"""

from __future__ import annotations

import falcon

from api.http import Api, Op, Route

DOCS_PATH = "/api/docs"

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Loop API reference</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:15px/1.5 system-ui,sans-serif;margin:0 auto;max-width:60rem;padding:1rem 2rem;color:#222}
h2{border-bottom:1px solid #ddd;margin-top:2rem}
details{border:1px solid #e3e3e3;border-radius:6px;margin:.4rem 0;padding:.3rem .7rem}
summary{cursor:pointer}.m{display:inline-block;min-width:4.5rem;font-weight:700;font-family:monospace}
.get{color:#0a7}.post{color:#07c}.patch{color:#c70}.delete{color:#c22}code,pre{font-family:monospace}
pre{background:#f6f6f6;padding:.5rem;overflow:auto;font-size:13px}.lock{color:#888;font-size:12px}
table{border-collapse:collapse}td{padding:.1rem .6rem .1rem 0;vertical-align:top}
</style></head><body>
<h1 id="title">Loop API reference</h1>
<p>Rendered from <a href="/api/openapi.json">/api/openapi.json</a>. Keyed operations need
<code>Authorization: Bearer &lt;key&gt;</code>.</p>
<div id="ops">Loading&hellip;</div>
<script>
"use strict";
const esc = s => String(s).replace(/[&<>"]/g, c => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;"}[c]));
const json = v => "<pre>" + esc(JSON.stringify(v, null, 2)) + "</pre>";
function operation(path, method, op) {
  let html = "<details class='op' data-op='" + method.toUpperCase() + " " + esc(path) + "'><summary>" +
    "<span class='m " + method + "'>" + method.toUpperCase() + "</span> <code>" + esc(path) + "</code> " +
    esc(op.summary || "") + (op.security ? " <span class='lock'>(key)</span>" : "") + "</summary>";
  if (op.parameters) {
    html += "<h4>Parameters</h4><table>" + op.parameters.map(p => "<tr><td><code>" + esc(p.name) + "</code></td><td>" +
      esc(p.in) + (p.required ? ", required" : "") + "</td><td>" + esc(p.description || "") + "</td></tr>").join("") + "</table>";
  }
  if (op.requestBody) {
    html += "<h4>Request body</h4>" + json(op.requestBody.content["application/json"].schema);
  }
  html += "<h4>Responses</h4><table>" + Object.entries(op.responses).map(([code, r]) =>
    "<tr><td><b>" + esc(code) + "</b></td><td>" + esc(r.description || (r.$ref || "").split("/").pop()) + "</td></tr>").join("") + "</table>";
  return html + "</details>";
}
fetch("/api/openapi.json").then(r => r.json()).then(doc => {
  document.getElementById("title").textContent = doc.info.title + " " + doc.info.version;
  const byTag = {};
  for (const [path, item] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(item)) {
      (byTag[op.tags[0]] = byTag[op.tags[0]] || []).push(operation(path, method, op));
    }
  }
  document.getElementById("ops").innerHTML = doc.tags.filter(t => byTag[t.name])
    .map(t => "<h2>" + esc(t.name) + "</h2>" + byTag[t.name].join("")).join("") +
    "<h2>Schemas</h2>" + Object.entries(doc.components.schemas)
    .map(([name, s]) => "<details><summary><code>" + esc(name) + "</code></summary>" + json(s) + "</details>").join("");
}).catch(err => { document.getElementById("ops").textContent = "Could not load the document: " + err; });
</script></body></html>
"""


class Reference:
    def on_get(self, req: falcon.Request, resp: falcon.Response) -> None:
        resp.content_type = "text/html; charset=utf-8"
        resp.text = PAGE


def routes(api: Api) -> list[Route]:
    return [Route(DOCS_PATH, Reference(), [
        Op("GET", "This API reference as a web page (rendered from /api/openapi.json)", "System", public=True,
           response_body={"type": "string"}, media_type="text/html"),
    ])]
