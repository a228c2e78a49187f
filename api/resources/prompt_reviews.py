"""``POST /api/prompt-reviews``: an agent's or human's rating of the prompt it was given."""

from __future__ import annotations

import falcon

from api.http import Api, Op, Route, send
from loop.models import AUTHOR_TYPES
from loop.schema import Body, Enum, Id, Int, Str

CREATE = Body({
    "versionId": Id(required=True, description="meta.versionId of the dispatched prompt"),
    "issueId": Id(required=True),
    "clarity": Int(required=True, minimum=1, maximum=5),
    "completeness": Int(required=True, minimum=1, maximum=5),
    "relevance": Int(required=True, minimum=1, maximum=5),
    "feedback": Str(max_len=10_000),
    "authorType": Enum(required=True, values=AUTHOR_TYPES),
})


class PromptReviews:
    def __init__(self, api: Api) -> None:
        self.api = api

    def on_post(self, req: falcon.Request, resp: falcon.Response) -> None:
        svc = self.api.store.prompts.reviews
        send(resp, {"data": svc.wire(svc.create(self.api.body(req, CREATE)))}, 201)


def routes(api: Api) -> list[Route]:
    return [
        Route("/api/prompt-reviews", PromptReviews(api), [
            Op("POST", "Review a prompt version (moves its EWMA score; may file an improvement task)",
               "Prompt Reviews", body=CREATE, responses={201: "Created", 400: "Invalid", 404: "Version not found"},
               response_schema="PromptReview"),
        ]),
    ]
