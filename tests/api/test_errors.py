"""One error shape everywhere, with stable codes; validation errors name the field; never a 500."""

from __future__ import annotations

from tests.api.support import Api


def error_of(response) -> dict:
    body = response.json()
    assert set(body) == {"error"}
    assert set(body["error"]) == {"code", "message", "field", "details"}
    return body["error"]


def test_validation_errors_name_the_field(api: Api):
    cases = [
        ({"limit": 0}, "limit"),
        ({"limit": 1001}, "limit"),
        ({"offset": -1}, "offset"),
        ({"by": "galaxy"}, "by"),
        ({"basis": "vibes"}, "basis"),
        ({"start": "yesterday"}, "start"),
        ({"start": "2026-11-02", "end": "2026-11-01"}, "end"),
        ({"start": "2026-11-01", "end": "2026-11-01"}, "end"),
        ({"team": ""}, "team"),
        ({"feature": "a\x01b"}, "feature"),
        # Valid ISO times that leave the calendar once moved to UTC: a clear 422, not an overflow.
        ({"start": "0001-01-01T00:00:00+05:00"}, "start"),
        ({"end": "9999-12-31T23:59:59-05:00"}, "end"),
    ]
    for params, field in cases:
        response = api.get("/spend", "admin", **params)
        assert response.status_code == 422, (params, response.text)
        error = error_of(response)
        assert error["code"] == "validation_error"
        assert error["field"] == field, (params, error)
        assert field in error["message"] or error["field"] == "end"


def test_several_invalid_fields_are_all_listed(api: Api):
    error = error_of(api.get("/spend", "admin", limit=0, offset=-5, by="x"))
    assert error["field"] == "limit"
    assert {d["field"] for d in error["details"]} == {"limit", "offset", "by"}


def test_framework_errors_use_the_same_shape(api: Api):
    unknown = api.client.get(api.url("/nothing-here"), headers=api.auth("admin"))
    assert unknown.status_code == 404
    assert error_of(unknown)["code"] == "not_found"
    wrong_method = api.client.delete(api.url("/spend"), headers=api.auth("admin"))
    assert wrong_method.status_code == 405
    assert error_of(wrong_method)["code"] == "method_not_allowed"
    unauthorized = api.client.get(api.url("/spend"))
    assert error_of(unauthorized) == {
        "code": "unauthorized",
        "message": "a management token is required (Authorization: Bearer ...)",
        "field": None,
        "details": [],
    }


def test_the_openapi_document_describes_the_error_shape(api: Api):
    doc = api.client.get(api.url("/openapi.json")).json()
    assert "HTTPValidationError" not in doc["components"]["schemas"]
    for item in doc["paths"].values():
        for operation in item.values():
            for status in ("401", "403", "404", "422"):
                schema = operation["responses"][status]["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/ErrorResponse"}
    docs = api.client.get(api.url("/docs"))
    assert docs.status_code == 200 and "swagger" in docs.text.lower()
