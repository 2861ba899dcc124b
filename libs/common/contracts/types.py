"""Building blocks of event payload models (事件契约): the base classes and the field types
every service's registry uses, so the same fact has the same JSON shape in every event.

Payloads are validated in their wire form (the JSON body a consumer receives) with pydantic
in strict mode: an integer is an integer (not `"5"`, not `5.0`), a day is a `YYYY-MM-DD`
string, an instant an RFC 3339 string (UTC when it has no offset), money an integer number
of fen (分) and a decimal figure (a weight, a score computed with `Decimal`) a string, so no
float rounding creeps into amounts or rankings.

Unknown fields are allowed when a payload is validated (`extra="allow"`): a producer may add
an optional field to a `.v1` event without breaking its consumers. The contract tests still
ask producers to declare every field they send (`Registry.check_event(declared_only=True)`).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field


class Payload(BaseModel):
    """Base of every event payload (and of the objects nested in one)."""

    model_config = ConfigDict(strict=True, extra="allow", frozen=True)


#: Extension keyword marking a property that carries the pseudonymous recipient reference
#: (the only recipient identifier any event may carry, DESIGN.md §3).
RECIPIENT_REF_MARK = "x-sa-recipient-ref"
#: Extension keyword marking a decimal figure carried as a string.
DECIMAL_FORMAT = "decimal"

Id = Annotated[str, Field(min_length=1, max_length=64)]
Code = Annotated[str, Field(min_length=1, max_length=60)]
PackId = Annotated[str, Field(min_length=1, max_length=40, description="Policy pack id")]
DivisionCode = Annotated[
    str,
    Field(
        pattern=r"^[0-9]{6}([0-9]{3}){0,2}$",
        description="Administrative division code (6 digits county, 9 township, 12 village)",
    ),
]
RegionScope = Annotated[
    str,
    Field(
        pattern=r"^([0-9]{2}|[0-9]{4}|[0-9]{6}|[0-9]{9}|[0-9]{12})$",
        description="A division code or a prefix of one (2 province, 4 city, 6 county, …)",
    ),
]
Uscc = Annotated[
    str,
    Field(
        pattern=r"^[0-9A-HJ-NP-RTUW-Y]{2}[0-9]{6}[0-9A-HJ-NP-RTUW-Y]{10}$",
        description="Unified social credit code (统一社会信用代码) of an organisation",
    ),
]
Fen = Annotated[int, Field(description="Money in fen (分), an integer")]
Count = Annotated[int, Field(ge=0)]
Version = Annotated[int, Field(ge=0, description="The entity's own counter (drop older ones)")]
Instant = Annotated[
    datetime,
    Field(
        description="RFC 3339 date-time. Without an offset it is UTC (instants read back "
        "from SQLite lose theirs; producers should send the offset)"
    ),
]
Day = date  # YYYY-MM-DD
DecimalText = Annotated[
    str,
    Field(
        pattern=r"^-?[0-9]+(\.[0-9]+)?$",
        json_schema_extra={"format": DECIMAL_FORMAT},
        description="A decimal number written as a string (no float rounding)",
    ),
]
RecipientRef = Annotated[
    str,
    Field(
        min_length=1,
        max_length=36,
        json_schema_extra={RECIPIENT_REF_MARK: True},
        description="Pseudonymous recipient reference; never a name or an ID number",
    ),
]
Text = Annotated[str, Field(max_length=8000)]
JsonObject = dict[str, Any]
