"""The layering issue 9 asks for: the worker loads no FastAPI (it renders webhooks with the
dialects' pure parts), and every dialect is in the one registry."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from api.dialects import registry

ROOT = Path(__file__).resolve().parents[2]
DIALECT_PACKAGES = sorted(
    path.parent.name for path in (ROOT / "api" / "dialects").glob("*/shapes.py")
)


def test_the_worker_imports_no_fastapi() -> None:
    code = "import sys, worker; print(sorted(m for m in sys.modules if m.split('.')[0] in "
    code += "('fastapi', 'starlette', 'uvicorn')))"
    loaded = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert loaded.stdout.strip() == "[]"


def test_every_dialect_package_is_in_the_registry() -> None:
    assert len(DIALECT_PACKAGES) == 6
    assert set(registry.RENDERERS) == set(DIALECT_PACKAGES)
