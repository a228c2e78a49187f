from tests.conftest import keys_of


def test_an_issue_can_be_created_listed_and_fetched(client, store):
    r = client.post("/api/issues", json={"title": "Fix <login> & \"stuff\"", "type": "task", "status": "todo"})
    assert r.status_code == 201, r.text
    issue = r.json["data"]
    assert issue["number"] == 1 and issue["status"] == "todo" and issue["description"] is None
    assert issue["createdAt"].endswith("Z")
    r = client.get("/api/issues?status=todo")
    assert r.json["total"] == 1 and r.json["data"][0]["id"] == issue["id"]
    r = client.get(f"/api/issues/{issue['id']}")
    assert r.json["data"]["children"] == [] and r.json["data"]["parent"] is None


def test_malformed_json_is_a_400_that_writes_nothing(client, store):
    before = keys_of(store)
    r = client.post("/api/issues", body=b"{nope", headers={"Content-Type": "application/json"})
    assert r.status_code == 400
    assert r.json["error"] == "Malformed JSON in request body"
    assert keys_of(store) == before
