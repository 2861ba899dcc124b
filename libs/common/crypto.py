"""Field-level encryption and blind indexes for personal data (DESIGN.md §5).

Resident ID numbers, names, phones and addresses are stored only as `FieldCipher` tokens and
found through `BlindIndex` values, so a copy of the database alone reveals neither the data nor
which rows belong to the same person.

- `FieldCipher` is AES-256-GCM with a random 96-bit nonce per value. The associated data binds a
  token to its context (e.g. ``"recipient.id_number:<row id>"``), so a ciphertext copied into
  another row or field fails to decrypt instead of silently showing someone else's data.
- Tokens name the key that sealed them (``v1.<key id>.<base64url>``), so keys can be rotated:
  add a new key, make it active, and `FieldCipher.rotate` old tokens at leisure.
- `BlindIndex` is HMAC-SHA256 over a domain and a normalised value: equal IDs give equal
  indexes (duplicates are caught without decrypting), but the index cannot be reversed or
  brute-forced without the key, and the same value in two fields gives unrelated indexes.

Nothing here is custom cryptography: it only composes `cryptography`'s AESGCM and stdlib HMAC.
Error messages and reprs never contain plaintext or key material.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import secrets
import unicodedata
from collections.abc import Mapping

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = [
    "BlindIndex",
    "DecryptionError",
    "FieldCipher",
    "KeyRing",
    "generate_key",
    "normalise",
]

KEY_BYTES = 32  # AES-256
NONCE_BYTES = 12  # 96-bit GCM nonce
TAG_BYTES = 16
MIN_INDEX_KEY_BYTES = 32
TOKEN_VERSION = "v1"

# Key ids appear inside tokens (separated by '.') and in settings (separated by ':' and ','),
# so they are restricted to characters that cannot collide with either.
_KEY_ID = re.compile(r"[A-Za-z0-9_-]{1,32}")
_B64URL = re.compile(r"[A-Za-z0-9_-]+")


class DecryptionError(ValueError):
    """A token could not be decrypted: malformed, tampered, wrong context or unknown key."""


def generate_key() -> str:
    """A fresh random key, base64 of 32 bytes (for `KeyRing` entries and `BlindIndex`)."""
    return base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode("ascii")


def _decode_b64_key(b64key: str, what: str) -> bytes:
    """Strict base64 decode; the error names the setting, never its value."""
    try:
        return base64.b64decode(b64key.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"{what} is not valid base64") from None


class KeyRing:
    """Data-encryption keys by key id, plus the id of the one used for new ciphertexts.

    Old keys stay in the ring so existing tokens remain readable while they are rotated.
    """

    def __init__(self, keys: Mapping[str, bytes], active: str) -> None:
        if not keys:
            raise ValueError("key ring is empty: at least one data key is required")
        for key_id, key in keys.items():
            if not isinstance(key_id, str) or not _KEY_ID.fullmatch(key_id):
                raise ValueError("invalid key id: use 1-32 characters from A-Z a-z 0-9 _ -")
            if not isinstance(key, bytes | bytearray) or len(key) != KEY_BYTES:
                length = len(key) if isinstance(key, bytes | bytearray) else "non-bytes"
                raise ValueError(f"key {key_id!r} must be exactly {KEY_BYTES} bytes (got {length})")
        if active not in keys:
            # Echo the id only if it looks like one (not, say, a key pasted into the wrong field).
            shown = repr(active) if isinstance(active, str) and _KEY_ID.fullmatch(active) else ""
            raise ValueError(f"active key id {shown} is not in the key ring".replace("  ", " "))
        self._keys: dict[str, bytes] = {k: bytes(v) for k, v in keys.items()}
        self._active = active

    @classmethod
    def from_config(cls, keys: str, active: str | None = None) -> KeyRing:
        """Parse ``"k1:<base64 32 bytes>,k2:<base64 32 bytes>"``; active defaults to the last."""
        parsed: dict[str, bytes] = {}
        last: str | None = None
        for position, entry in enumerate(keys.split(","), start=1):
            entry = entry.strip()
            if not entry:
                raise ValueError(f"data key entry {position} is empty")
            key_id, sep, b64key = entry.partition(":")
            key_id = key_id.strip()
            if not sep:
                raise ValueError(f"data key entry {position} must look like '<key id>:<base64>'")
            if not _KEY_ID.fullmatch(key_id):
                # The bad id is not echoed: in a mangled setting it may be part of a key.
                raise ValueError(
                    f"data key entry {position} has an invalid key id: "
                    "use 1-32 characters from A-Z a-z 0-9 _ - (no ':' ',' '.' or spaces)"
                )
            if ":" in b64key:
                raise ValueError(f"key id {key_id!r}: key ids and keys must not contain ':'")
            if key_id in parsed:
                raise ValueError(f"duplicate key id {key_id!r} in data keys")
            key = _decode_b64_key(b64key, f"data key {key_id!r}")
            if len(key) != KEY_BYTES:
                raise ValueError(
                    f"data key {key_id!r} must decode to exactly {KEY_BYTES} bytes (got {len(key)})"
                )
            parsed[key_id] = key
            last = key_id
        if active is None:
            active = last
        if active is None:  # unreachable: split() yields at least one entry, or we raised
            raise ValueError("no data keys configured")
        return cls(parsed, active.strip())

    @property
    def active_key_id(self) -> str:
        """The key id new ciphertexts are sealed under."""
        return self._active

    @property
    def key_ids(self) -> tuple[str, ...]:
        """All key ids, in configuration order."""
        return tuple(self._keys)

    def __contains__(self, key_id: object) -> bool:
        return key_id in self._keys

    def key(self, key_id: str) -> bytes:
        """The key bytes for `key_id` (KeyError if unknown)."""
        return self._keys[key_id]

    def __repr__(self) -> str:
        return f"KeyRing(key_ids={list(self._keys)!r}, active={self._active!r})"


def _check_context(context: str) -> bytes:
    """Contexts are required: an empty one would stop binding ciphertexts to their row."""
    if not isinstance(context, str) or not context:
        raise ValueError("context must be a non-empty string, e.g. 'recipient.name:<row id>'")
    return context.encode("utf-8")


class FieldCipher:
    """Encrypts single field values into compact ASCII tokens bound to a context."""

    def __init__(self, keyring: KeyRing) -> None:
        self._keyring = keyring
        self._aead = {key_id: AESGCM(keyring.key(key_id)) for key_id in keyring.key_ids}

    @property
    def keyring(self) -> KeyRing:
        """The key ring this cipher uses."""
        return self._keyring

    @staticmethod
    def _aad(key_id: str, context: bytes) -> bytes:
        """Authenticated header: version, key id and context (NUL cannot occur in a key id)."""
        return f"{TOKEN_VERSION}\x00{key_id}\x00".encode("ascii") + context

    def encrypt(self, plaintext: str, *, context: str) -> str:
        """Seal `plaintext` under the active key; a fresh random nonce every call."""
        if not isinstance(plaintext, str):
            raise TypeError(f"plaintext must be str, not {type(plaintext).__name__}")
        aad_context = _check_context(context)
        key_id = self._keyring.active_key_id
        nonce = secrets.token_bytes(NONCE_BYTES)
        sealed = self._aead[key_id].encrypt(
            nonce, plaintext.encode("utf-8"), self._aad(key_id, aad_context)
        )
        body = base64.urlsafe_b64encode(nonce + sealed).rstrip(b"=").decode("ascii")
        return f"{TOKEN_VERSION}.{key_id}.{body}"

    def encrypt_optional(self, plaintext: str | None, *, context: str) -> str | None:
        """`encrypt`, passing None through (for nullable columns)."""
        return None if plaintext is None else self.encrypt(plaintext, context=context)

    @staticmethod
    def _parse(token: str) -> tuple[str, bytes]:
        """Split a token into key id and nonce+ciphertext+tag; strict, so edits are caught."""
        if not isinstance(token, str):
            raise DecryptionError("malformed token: not a string")
        parts = token.split(".")
        if len(parts) != 3:
            raise DecryptionError("malformed token: expected 'v1.<key id>.<data>'")
        version, key_id, body = parts
        if version != TOKEN_VERSION:
            raise DecryptionError("unsupported token version")
        if not _KEY_ID.fullmatch(key_id):
            raise DecryptionError("malformed token: invalid key id")
        if not _B64URL.fullmatch(body):
            raise DecryptionError("malformed token: data is not base64url")
        try:
            raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
        except (binascii.Error, ValueError):
            raise DecryptionError("malformed token: data is not base64url") from None
        # Reject non-canonical encodings (spare low bits set in the last character), so that
        # every change to the token text is detected, not only changes to the decoded bytes.
        if base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii") != body:
            raise DecryptionError("malformed token: non-canonical base64url")
        if len(raw) < NONCE_BYTES + TAG_BYTES:
            raise DecryptionError("malformed token: too short")
        return key_id, raw

    def key_id_of(self, token: str) -> str:
        """The id of the key that sealed `token` (DecryptionError if malformed)."""
        return self._parse(token)[0]

    def decrypt(self, token: str, *, context: str) -> str:
        """Open `token`; DecryptionError if tampered, sealed for another context or key unknown."""
        aad_context = _check_context(context)
        key_id, raw = self._parse(token)
        aead = self._aead.get(key_id)
        if aead is None:
            raise DecryptionError(f"unknown key id {key_id!r}: not in the configured key ring")
        try:
            plain = aead.decrypt(
                raw[:NONCE_BYTES], raw[NONCE_BYTES:], self._aad(key_id, aad_context)
            )
        except InvalidTag:
            raise DecryptionError(
                "authentication failed: token was tampered with, or belongs to another "
                "field/row (context), or the key is wrong"
            ) from None
        try:
            return plain.decode("utf-8")
        except UnicodeDecodeError:  # pragma: no cover - authenticated data we produced
            raise DecryptionError("decrypted value is not UTF-8") from None

    def decrypt_optional(self, token: str | None, *, context: str) -> str | None:
        """`decrypt`, passing None through (for nullable columns)."""
        return None if token is None else self.decrypt(token, context=context)

    def needs_rotation(self, token: str) -> bool:
        """True when `token` was sealed under a key other than the active one."""
        return self.key_id_of(token) != self._keyring.active_key_id

    def rotate(self, token: str, *, context: str) -> str:
        """Re-seal `token` under the active key.

        The token is always decrypted (so a corrupt one is reported); one already under the
        active key is returned unchanged, so a rotation job can skip writing it back.
        """
        plaintext = self.decrypt(token, context=context)
        if not self.needs_rotation(token):
            return token
        return self.encrypt(plaintext, context=context)


def normalise(value: str) -> str:
    """Canonical form for indexing: NFKC (full-width → ASCII), trimmed, upper-case.

    So "２２０１…１２３４ｘ ", "220102…1234x" and "220102…1234X" index identically.
    """
    return unicodedata.normalize("NFKC", value).strip().upper()


class BlindIndex:
    """Keyed, deterministic, one-way index of a value, for equality search on encrypted data."""

    def __init__(self, key: bytes) -> None:
        if not isinstance(key, bytes | bytearray):
            raise TypeError("blind index key must be bytes")
        if len(key) < MIN_INDEX_KEY_BYTES:
            raise ValueError(
                f"blind index key must be at least {MIN_INDEX_KEY_BYTES} bytes (got {len(key)})"
            )
        self._key = bytes(key)

    @classmethod
    def from_config(cls, b64key: str) -> BlindIndex:
        """Build from a base64 setting holding at least 32 bytes."""
        return cls(_decode_b64_key(b64key, "blind index key"))

    def compute(self, value: str, *, domain: str) -> str:
        """64 hex chars: HMAC-SHA256(key, domain + NUL + normalise(value)).

        The domain (e.g. "recipient.id_number") keeps indexes of different fields unrelated.
        Empty values are refused: they would all share one index and look like duplicates.
        """
        if not isinstance(value, str):
            raise TypeError(f"value must be str, not {type(value).__name__}")
        if not domain or "\x00" in domain:
            raise ValueError("domain must be a non-empty string without NUL characters")
        canonical = normalise(value)
        if not canonical:
            raise ValueError("cannot index an empty value")
        message = domain.encode("utf-8") + b"\x00" + canonical.encode("utf-8")
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def __repr__(self) -> str:
        return "BlindIndex(key=<hidden>)"
