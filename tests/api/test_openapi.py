"""The API describes itself, and a path it does not know answers like the rest of it: JSON with a code."""

import json

import pytest

from tests.conftest import JsonClient

pytestmark = pytest.mark.django_db

HTTP_METHODS = {"get", "post", "put", "patch", "delete"}


def test_b09_openapi_schema_is_public_json_with_every_path_under_api_v1():
    response = JsonClient().get("/api/v1/openapi.json")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/json")
    schema = json.loads(response.content)
    assert schema["openapi"].startswith("3.")
    assert schema["paths"], "the schema lists no paths"
    assert all(path.startswith("/api/v1/") for path in schema["paths"])
    operations = {(m.upper(), p) for p, ops in schema["paths"].items() for m in ops if m in HTTP_METHODS}
    assert ("POST", "/api/v1/orders") in operations
    assert ("POST", "/api/v1/auth/login") in operations


def test_b09_openapi_schema_declares_how_callers_authenticate():
    schema = JsonClient().get("/api/v1/openapi.json").json()

    schemes = schema["components"]["securitySchemes"]
    assert schemes["MachineKey"]["scheme"] == "bearer"
    assert schemes["PersonSession"]["in"] == "cookie"
    # every operation but sign-in and the acquirer's notifications (trusted by network and re-read, R11) asks for one
    public = {("post", "/api/v1/auth/login"), ("post", "/api/v1/acquiring/yookassa")}
    for path, ops in schema["paths"].items():
        for method, op in ops.items():
            if (method, path) in public:
                assert not op.get("security")
            else:
                assert op.get("security"), f"{method.upper()} {path} is open to anyone"


def test_b09_api_docs_page_is_public_html():
    response = JsonClient().get("/api/v1/docs")

    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/html")
    assert b"/api/v1/openapi.json" in response.content


def test_the_address_serve_announces_leads_to_the_api_docs_not_to_a_404():
    response = JsonClient().get("/")

    assert response.status_code == 302  # not permanent: the back office's pages will take this address
    assert response["Location"] == "/api/v1/docs"


@pytest.mark.parametrize("path", ["/api/v1/no-such-thing", "/api/v1/orders/not-a-number", "/api/v1/orders/1/nothing"])
def test_b09_unknown_path_under_api_v1_answers_404_json_with_a_code(path):
    response = JsonClient().get(path)

    assert response.status_code == 404
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["code"] == "not_found"
    assert body["message"] == "Не найдено."  # Russian by default, like every other API message


def test_b11_unknown_path_message_follows_accept_language():
    response = JsonClient().get("/api/v1/no-such-thing", HTTP_ACCEPT_LANGUAGE="en")

    assert response.status_code == 404
    assert response.json() == {"code": "not_found", "message": "Not found."}


def test_b09_a_method_the_path_does_not_have_answers_405_json_with_a_code():
    response = JsonClient().delete("/api/v1/orders")

    assert response.status_code == 405
    assert response["Content-Type"].startswith("application/json")
    assert response.json()["code"] == "method_not_allowed"
    assert "GET" in response["Allow"] and "POST" in response["Allow"]
