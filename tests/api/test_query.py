"""Query parameters as msgspec Structs (faced.api.codec.Query): the exact 400s clients get.

Unit tests of parse_params with the routes' own Structs; the HTTP tests (test_tracking,
test_openface_sockets, test_analyze_api) check the same errors on the wire.
"""

from __future__ import annotations

import pytest

from faced.api.analyze import AnalyzeOptions
from faced.api.codec import EncodingQuery, Query, parse_params, query_parameters
from faced.api.errors import ApiError
from faced.api.tracking import TrackingQuery


def _refusal(params: dict[str, str], schema: type[Query]) -> dict[str, object]:
    with pytest.raises(ApiError) as caught:
        parse_params(params, schema)
    assert caught.value.status == 400
    return {"error": caught.value.message, **caught.value.extra}


def test_socket_encoding() -> None:
    assert parse_params({}, EncodingQuery).encoding == "json"
    assert parse_params({"encoding": "msgpack", "other": "x"}, EncodingQuery).encoding == "msgpack"
    for raw in ("xml", ""):
        assert _refusal({"encoding": raw}, EncodingQuery) == {
            "error": f"invalid value for 'encoding': {raw!r}; allowed: json, msgpack",
            "field": "encoding",
            "allowed": ["json", "msgpack"],
        }


def test_tracking_query_values_and_blanks() -> None:
    query = parse_params(
        {"encoding": "", "fields": "head, blendshapes", "fps": " 5"}, TrackingQuery
    )
    assert query.encoding == "json"  # blank: the default, as before
    assert query.wanted_fields() == {"head", "blendshapes"}
    assert query.fps == 5.0
    assert parse_params({"fields": ""}, TrackingQuery).wanted_fields() is None


@pytest.mark.parametrize("raw", ["", "0", "-1", "nan", "inf", "1001", "x"])
def test_tracking_fps_refusals(raw: str) -> None:
    assert _refusal({"fps": raw}, TrackingQuery) == {
        "error": f"invalid value for 'fps': {raw!r}; expected a number > 0",
        "field": "fps",
        "expected": "number > 0",
    }


def test_tracking_reports_the_first_bad_parameter_in_declared_order() -> None:
    error = _refusal({"fields": "nose", "fps": "0"}, TrackingQuery)
    assert error["field"] == "fields"
    assert str(error["error"]).startswith("invalid value for 'fields': unknown nose; allowed: ")
    assert _refusal({"encoding": "xml", "fields": "nose"}, TrackingQuery)["field"] == "encoding"


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, (False, None)),
        ({"landmarks": " Yes ", "num_faces": " 3 "}, (True, 3)),
        ({"landmarks": "0", "num_faces": ""}, (False, None)),
        ({"landmarks": "  "}, (False, None)),
    ],
)
def test_analyze_options(params: dict[str, str], expected: tuple[bool, int | None]) -> None:
    options = parse_params(params, AnalyzeOptions)
    assert (options.landmarks, options.num_faces) == expected


@pytest.mark.parametrize(
    ("params", "error"),
    [
        ({"landmarks": "x", "num_faces": "9"}, "landmarks must be true or false, got 'x'"),
        ({"num_faces": "9"}, "num_faces must be 1-8, got 9"),
        ({"num_faces": "0"}, "num_faces must be 1-8, got 0"),
        ({"num_faces": "3.0"}, "num_faces must be an integer 1-8"),
        ({"num_faces": " "}, "num_faces must be an integer 1-8"),
    ],
)
def test_analyze_option_refusals(params: dict[str, str], error: str) -> None:
    assert _refusal(params, AnalyzeOptions) == {"error": error}


def test_the_structs_give_the_openapi_parameters() -> None:
    (encoding,) = query_parameters(EncodingQuery)
    assert encoding == {
        "name": "encoding",
        "in": "query",
        "schema": {"enum": ["json", "msgpack"], "default": "json"},
    }
    fps = {p["name"]: p for p in query_parameters(TrackingQuery)}["fps"]
    assert fps["schema"]["type"] == "number" and fps["schema"]["exclusiveMinimum"] == 0
    assert "default" not in fps["schema"]  # absent means the camera's cap, not null
    faces = {p["name"]: p for p in query_parameters(AnalyzeOptions)}["num_faces"]
    assert faces["schema"]["minimum"] == 1 and faces["schema"]["maximum"] == 8


def test_a_bounded_number_names_its_range() -> None:
    from faced.api.jobs import JobListQuery  # noqa: PLC0415

    assert _refusal({"offset": "18446744073709551615"}, JobListQuery) == {
        "error": "invalid value for 'offset': '18446744073709551615'; "
        "expected an int from 0 to 2147483647",
        "field": "offset",
        "expected": "int",
    }


def test_the_text_null_is_not_an_absent_number() -> None:
    # msgspec's lax mode would read it as None; a client leaves the field out instead.
    from faced.api.jobs import JobOptionsQuery  # noqa: PLC0415

    assert _refusal({"fps": "null"}, JobOptionsQuery)["field"] == "fps"
    assert parse_params({"label": "null"}, JobOptionsQuery).label == "null"  # a name is text
