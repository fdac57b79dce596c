"""A batch line is parsed by the dialect of its `url`, exactly as that route parses a body."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from minio.error import S3Error

from api.batches import _end_of, _page, parse_line
from api.dialects.native import shapes as native
from api.dialects.openai import shapes as openai
from api.dialects.registry import SUBMIT_ROUTES
from api.dialects.seed001 import shapes as seed001
from api.dialects.seed002 import shapes as seed002
from api.dialects.seed003 import shapes as seed003
from api.dialects.seed004 import shapes as seed004
from api.problem import APIError
from providers.catalog import CatalogError
from reelay.batches import MAX_LINE_BYTES, PageRequest

# Every example body of each dialect's docs, by the route that takes it.
EXAMPLES: list[tuple[str, str, dict[str, Any]]] = [
    (url, module.DIALECT, example["value"])
    for url, modules in [
        ("/v1/video/generations", [native, seed001]),
        ("/v1/videos", [seed004, openai]),
        ("/v2/videos/generate", [seed002]),
        ("/api/v1/videos/generate", [seed003]),
    ]
    for module in modules
    for example in module.EXAMPLES.values()
]


def _raw(url: str, body: Any, custom_id: Any = "c1", method: str = "POST") -> bytes:
    line = {"custom_id": custom_id, "method": method, "url": url, "body": body}
    return json.dumps(line).encode()


@pytest.mark.parametrize(("url", "dialect", "body"), EXAMPLES)
def test_every_documented_body_parses_in_its_own_dialect(
    url: str, dialect: str, body: dict[str, Any]
) -> None:
    parsed = parse_line(_raw(url, body))
    assert parsed.custom_id == "c1"
    assert parsed.submission.dialect == dialect


def test_the_routes_are_the_submit_routes() -> None:
    assert {url for url, _, _ in EXAMPLES} == set(SUBMIT_ROUTES)


BAD_BODIES = [
    ("/v1/video/generations", native, {"prompt": "x", "duration_seconds": 999}),
    (
        "/v1/video/generations",
        seed001,
        {"model": "google/veo-3.0-generate-preview", "parameters": {}},
    ),
    ("/v2/videos/generate", seed002, {"prompt": "x", "model": "veo-3", "parameters": "no"}),
    ("/api/v1/videos/generate", seed003, {"prompt": "x", "model": "kling-3.0-pro"}),
    ("/v1/videos", seed004, {"prompt": "x", "model": "google/veo-3.0", "duration": 99}),
    ("/v1/videos", openai, {"prompt": "x", "seconds": "77"}),
]


@pytest.mark.parametrize(("url", "module", "body"), BAD_BODIES)
def test_a_bad_body_gets_its_dialects_own_message(url: str, module: Any, body: Any) -> None:
    try:
        module.submission(body)
    except APIError as exc:
        expected = (exc.message, exc.param)
    except CatalogError as exc:
        expected = (exc.message, exc.field)
    else:
        pytest.fail("the dialect accepted the body")
    with pytest.raises(APIError) as caught:
        parse_line(_raw(url, body))
    assert (caught.value.message, caught.value.param) == expected


@pytest.mark.parametrize(
    ("raw", "param"),
    [
        (b"{not json", None),
        (b"[1, 2]", None),
        (_raw("/v1/video/generations", {"prompt": "x"}, custom_id=None), "custom_id"),
        (_raw("/v1/video/generations", {"prompt": "x"}, custom_id=""), "custom_id"),
        (_raw("/v1/video/generations", {"prompt": "x"}, method="GET"), "method"),
        (_raw("/v1/elsewhere", {"prompt": "x"}), "url"),
        (_raw("/v1/video/generations", "a prompt"), "body"),
        (_raw("/v1/video/generations", {"prompt": "x" * MAX_LINE_BYTES}), "body"),
    ],
)
def test_a_line_out_of_shape_is_refused_naming_the_field(raw: bytes, param: str | None) -> None:
    with pytest.raises(APIError) as caught:
        parse_line(raw)
    assert caught.value.param == param
    assert caught.value.status_code == 400


class _Object:
    """A stored object as `minio` streams it, in chunks of `size` bytes."""

    def __init__(self, data: bytes, size: int) -> None:
        self._data, self._size = data, size

    def stream(self, _amount: int) -> Iterator[bytes]:
        for start in range(0, len(self._data), self._size):
            yield self._data[start : start + self._size]

    def close(self) -> None:
        pass

    def release_conn(self) -> None:
        pass


class _S3:
    def __init__(self, data: bytes, size: int) -> None:
        self._data, self._size = data, size

    def get_object(self, _bucket: str, _key: str, offset: int = 0) -> _Object:
        if offset and offset >= len(self._data):  # as S3 answers a range from the end
            raise S3Error(_RESPONSE, "InvalidRange", "not satisfiable", "k", "r", "h")
        return _Object(self._data[offset:], self._size)


_RESPONSE: Any = None


def test_a_file_of_whole_pages_ends_with_an_empty_page() -> None:
    data = b"a\nb\nc\nd\n"
    s3: Any = _S3(data, 3)
    request = PageRequest(
        batch_id="b", tenant_id="t", input_key="k", offset=0, first_line=1, max_lines=2
    )
    first = list(_page(s3, "bucket", request))
    offset, eof = _end_of(first, request)
    assert not eof
    second = request.model_copy(update={"offset": offset, "first_line": 3})
    offset, eof = _end_of(list(_page(s3, "bucket", second)), second)
    assert (offset, eof) == (len(data), False)
    last = second.model_copy(update={"offset": offset, "first_line": 5})
    assert list(_page(s3, "bucket", last)) == []


@pytest.mark.parametrize("chunk", [1, 3, 7, 64 * 1024])
def test_pages_stream_lines_with_their_offsets_across_chunks_and_pages(chunk: int) -> None:
    long_line = b"x" * (MAX_LINE_BYTES + 10)
    lines = [b'{"a": 1}', b"", b"second", long_line, b"last"]
    data = b"\n".join(lines)  # no newline at the end
    s3: Any = _S3(data, chunk)
    seen: list[tuple[int, int, bytes]] = []
    request = PageRequest(batch_id="b", tenant_id="t", input_key="k", offset=0, first_line=1)
    request.max_lines = 2
    while True:
        page = list(_page(s3, "bucket", request))
        seen += [(number, length, raw) for number, _, length, raw in page]
        for _, offset, length, raw in page:
            assert data[offset : offset + length].startswith(raw)
        offset, eof = _end_of(page, request)
        if eof:
            break
        request = request.model_copy(update={"offset": offset, "first_line": seen[-1][0] + 1})
    assert [number for number, _, _ in seen] == [1, 2, 3, 4, 5]
    assert [length for _, length, _ in seen] == [len(line) for line in lines]
    assert seen[3][2] == long_line[: MAX_LINE_BYTES + 1]
