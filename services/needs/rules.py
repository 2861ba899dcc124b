"""Needs rules (pure): what a recipient and a need item must satisfy under the pack."""

from __future__ import annotations

from collections.abc import Sequence

from libs.common.errors import FieldError
from libs.common.policy import PolicyPack


def category_errors(pack: PolicyPack, categories: Sequence[str]) -> list[FieldError]:
    errors = []
    for i, code in enumerate(categories):
        if pack.category(code) is None:
            known = ", ".join(c.code for c in pack.recipient_categories)
            errors.append(
                FieldError(
                    f"body.categories.{i}", f"{code!r} is not a {pack.province} category ({known})"
                )
            )
    if len(set(categories)) != len(categories):
        errors.append(FieldError("body.categories", "categories repeat"))
    return errors


def service_errors(pack: PolicyPack, service_code: str) -> list[FieldError]:
    """A need item must be a direct service (服务性工作) of the province catalogue."""
    item = pack.catalogue_item(service_code)
    if item is None:
        return [
            FieldError(
                "body.service_code", f"{service_code!r} is not in the {pack.province} catalogue"
            )
        ]
    if item.kind != "direct":
        return [
            FieldError(
                "body.service_code",
                f"{service_code!r} is administrative work, not a direct service for a person "
                f"({item.source.cite()})",
            )
        ]
    return []


def mask_name(name: str) -> str:
    """张三丰 → 张**: keep the family name only."""
    return name[:1] + "*" * max(len(name) - 1, 1)
