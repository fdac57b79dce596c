"""Reelay's search-attribute list as data (`search_attributes.toml`: name -> type)."""

from __future__ import annotations

import tomllib
from functools import cache
from importlib import resources
from typing import Literal

from pydantic import TypeAdapter

#: The types `temporal operator search-attribute create --type` accepts.
SearchAttributeType = Literal["Text", "Keyword", "Int", "Double", "Bool", "Datetime", "KeywordList"]


@cache
def search_attribute_types() -> dict[str, SearchAttributeType]:
    """Every search attribute Reelay uses, by name, with its Temporal type (validated)."""
    text = resources.files("reelay").joinpath("search_attributes.toml").read_text()
    return TypeAdapter(dict[str, SearchAttributeType]).validate_python(tomllib.loads(text))
