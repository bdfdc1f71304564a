import pytest


@pytest.mark.parametrize("name", ["projects", "checkin", "credits", "certs"])
def test_healthz_and_openapi(name, request):
    app = request.getfixturevalue(f"{name}_app")
    client = app.test_client()
    resp = client.get(f"/{name}/healthz")
    assert resp.status_code == 200, resp.json
    assert resp.json["checks"] == {"database": "ok", "redis": "ok"}
    spec = client.get(f"/{name}/api/openapi.json")
    assert spec.status_code == 200
    assert spec.json["openapi"].startswith("3.")


def test_unknown_page_is_chinese(projects_app):
    client = projects_app.test_client()
    page = client.get("/projects/nothing-here", headers={"Accept": "text/html"})
    assert page.status_code == 404
    assert "您要找的内容不存在" in page.get_data(as_text=True)
    api = client.get("/projects/api/nothing-here")
    assert api.status_code == 404
    assert api.json["error"]["code"] == "not_found"
    assert api.json["error"]["request_id"]
