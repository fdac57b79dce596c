"""The API over HTTP for the CLI: the shared options, one client per command, and the API's
errors turned into one line and exit status 1 (never a traceback). The line goes to stdout,
or with `--json` to stderr, so that stdout holds nothing but the API's JSON."""

from __future__ import annotations

import json
from pathlib import Path
from types import TracebackType
from typing import Annotated, Any, NoReturn

import httpx
import typer
from rich.console import Console
from rich.text import Text

DEFAULT_API_URL = "http://127.0.0.1:8000"

ApiUrl = Annotated[
    str,
    typer.Option("--api", "--base-url", envvar="REELAY_API_URL", help="Reelay API base URL"),
]
ApiKey = Annotated[
    str,
    typer.Option("--key", envvar=["REELAY_API_KEY", "REELAY_DEV_API_KEY"], help="API key"),
]
AsJson = Annotated[
    bool, typer.Option("--json", help="print the API's JSON (machine-readable) instead")
]

# Plain consoles: the API's text (prompts like `[emu gen=2]`, messages) is never read as
# rich markup or emoji codes; styling goes through `rich.text.Text`.
console = Console(markup=False, emoji=False)
errors = Console(stderr=True, markup=False, emoji=False)

Params = dict[str, str | int]


def fail(to: Console, message: str, status_code: int | None = None) -> NoReturn:
    """Print `message` (verbatim, no markup) and exit with status 1."""
    label = f"error {status_code}: " if status_code is not None else "error: "
    to.print(Text.assemble((label, "bold red"), message), soft_wrap=True)
    raise typer.Exit(1)


def print_json(body: Any) -> None:
    """The API's JSON on stdout, plain (no colour, no wrapping) so it pipes into `jq`."""
    typer.echo(json.dumps(body, indent=2, ensure_ascii=False))


def _error_message(response: httpx.Response) -> str:
    """The message of any of the API's error shapes: `{"error": {"message"}}` (native, OpenAI)
    or `{"error": "<message>"}` (seed 001); the raw text when it is neither."""
    try:
        error = response.json()["error"]
    except (ValueError, KeyError, TypeError):
        return response.text or response.reason_phrase
    if isinstance(error, dict) and "message" in error:
        return str(error["message"])
    return str(error)


class Api:
    """A Reelay API at `url`, called with `key`; with `as_json`, errors go to stderr."""

    def __init__(self, url: str, key: str, *, as_json: bool = False) -> None:
        self.url = url.rstrip("/")
        self.notes = errors if as_json else console
        self._http = httpx.Client(
            base_url=self.url, headers={"Authorization": f"Bearer {key}"}, timeout=30
        )

    def __enter__(self) -> Api:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._http.close()

    def get(self, path: str, params: Params | None = None) -> dict[str, Any]:
        return self._call("GET", path, params=params)

    def post(self, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        return self._call("POST", path, json=body)

    def upload(
        self,
        path: str,
        file: Path,
        fields: dict[str, str],
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """POST `file` as multipart field `file` with `fields` (streamed from disk)."""
        with file.open("rb") as handle:
            files = {"file": (file.name, handle, "application/jsonl")}
            return self._call("POST", path, files=files, data=fields, headers=headers or {})

    def lines(self, path: str) -> list[str]:
        """The non-empty lines of a text (JSONL) answer."""
        try:
            response = self._http.get(path)
        except httpx.HTTPError as exc:
            fail(self.notes, f"cannot reach the API at {self.url}: {exc}")
        if not response.is_success:
            fail(self.notes, _error_message(response), response.status_code)
        return [line for line in response.text.splitlines() if line.strip()]

    def download(self, path: str, output: Path) -> None:
        """Stream the bytes at `path` into `output`."""
        try:
            with self._http.stream("GET", path) as response:
                if not response.is_success:
                    response.read()
                    fail(self.notes, _error_message(response), response.status_code)
                with output.open("wb") as out:
                    for chunk in response.iter_bytes():
                        out.write(chunk)
        except httpx.HTTPError as exc:
            fail(self.notes, f"cannot reach the API at {self.url}: {exc}")

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            fail(self.notes, f"cannot reach the API at {self.url}: {exc}")
        if not response.is_success:
            fail(self.notes, _error_message(response), response.status_code)
        try:
            body: dict[str, Any] = response.json()
        except ValueError:
            fail(self.notes, f"the API answered {method} {path} with something that is not JSON")
        return body
