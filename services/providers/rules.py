"""Registration rules for the library (pure: no I/O)."""

from __future__ import annotations

from collections.abc import Sequence

from libs.common.errors import FieldError
from libs.common.policy import PolicyPack


def registration_errors(
    pack: PolicyPack, *, kind: str, service_codes: Sequence[str], service_regions: Sequence[str]
) -> tuple[list[FieldError], list[str]]:
    """Field errors and the clauses behind them, for a registration under `pack`.

    A kind the pack refuses (e.g. class-I public institutions) cites the clause; services
    must be items of the province catalogue; service regions must lie in the province.
    """
    errors: list[FieldError] = []
    clauses: list[str] = []
    contractor = pack.contractor_kind(kind)
    if contractor is None:
        allowed = ", ".join(k.code for k in pack.contractor_kinds if k.allowed)
        errors.append(FieldError("body.kind", f"unknown contractor kind; allowed: {allowed}"))
    elif not contractor.allowed:
        clause = contractor.source.cite()
        errors.append(
            FieldError(
                "body.kind", f"{contractor.name_zh} may not take government purchases ({clause})"
            )
        )
        clauses.append(clause)
    for i, code in enumerate(service_codes):
        if pack.catalogue_item(code) is None:
            errors.append(
                FieldError(
                    f"body.services.{i}.code", f"{code!r} is not in the {pack.province} catalogue"
                )
            )
    for i, scope in enumerate(service_regions):
        if not scope.startswith(pack.province_code):
            errors.append(
                FieldError(
                    f"body.service_regions.{i}",
                    f"outside province {pack.province_code} of this library",
                )
            )
    return errors, clauses
