"""Masked forms of contact details for responses and logs (脱敏显示).

Shared by every service that shows a phone number or an e-mail address it keeps sealed
(recipients in needs, experts in providers): the masked form lets a caseworker recognise a
number they already know without disclosing it to anyone else.
"""

from __future__ import annotations

__all__ = ["mask_email", "mask_phone"]


def mask_phone(phone: str) -> str:
    """13812345678 → 138****5678; anything of 7 digits or fewer → ****.

    Spaces and hyphens are dropped first, so "138-1234-5678" masks like "13812345678".
    """
    digits = phone.replace(" ", "").replace("-", "")
    if len(digits) <= 7:
        return "****"  # too short to show both ends without showing most of it
    return digits[:3] + "*" * (len(digits) - 7) + digits[-4:]


def mask_email(email: str) -> str:
    """alice@example.com → a***@example.com; without a usable local part → ***@domain.

    The domain stays visible (it says which institution, not which person); of the local
    part only the first character is kept, and the stars do not reveal its length.
    """
    local, at, domain = email.strip().rpartition("@")
    if not at or not domain:
        return "***"
    return f"{local[:1]}***@{domain}"
