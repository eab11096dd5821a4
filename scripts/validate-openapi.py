#!/usr/bin/env python3
"""Validate the EventBroker OpenAPI document.

Usage: scripts/validate-openapi.py [path]   (default: openapi.yaml at the repo root)
Requires: pip install openapi-spec-validator pyyaml
"""
import sys
from pathlib import Path

import yaml
from openapi_spec_validator import validate

try:
    from openapi_spec_validator import OpenAPIV31SpecValidator
except ImportError:  # older releases
    OpenAPIV31SpecValidator = None


def describe(e: Exception) -> str:
    """A short, readable description (some exceptions embed the whole spec)."""
    if hasattr(e, "ref"):  # referencing.exceptions.Unresolvable / PointerToNowhere
        return f"{type(e).__name__}: unresolvable $ref {e.ref!r}"
    text = getattr(e, "message", None) or str(e)
    where = "/".join(str(p) for p in getattr(e, "absolute_path", []) or [])
    if len(text) > 600:
        text = text[:600] + " ..."
    return f"{type(e).__name__}: {text}" + (f" (at {where})" if where else "")


def main() -> int:
    repo_root = Path(__file__).resolve().parent.parent
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else repo_root / "openapi.yaml"
    name = path.name
    try:
        with open(path, encoding="utf-8") as f:
            spec = yaml.safe_load(f)
        if not isinstance(spec, dict):
            raise ValueError("the document is not a YAML mapping")
        version = str(spec.get("openapi", ""))
        if not version.startswith("3.1."):
            raise ValueError(f"expected openapi: 3.1.x, found {version!r}")
        if OpenAPIV31SpecValidator is not None:
            validate(spec, base_uri=path.resolve().as_uri(), cls=OpenAPIV31SpecValidator)
        else:
            validate(spec)
    except Exception as e:  # noqa: BLE001 - report any failure and exit 1
        print(f"{name}: INVALID: {describe(e)}")
        return 1
    print(f"{name}: valid OpenAPI 3.1")
    return 0


if __name__ == "__main__":
    sys.exit(main())
