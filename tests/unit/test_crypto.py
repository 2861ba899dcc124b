"""Tests of `libs.common.crypto`: field encryption, key rotation and blind indexes.

These protect the personal data of social-assistance recipients, so besides round trips they
check the failure modes: tampering, ciphertexts moved between rows or fields, unknown keys, and
that no error message or repr leaks plaintext or key material.
"""

from __future__ import annotations

import base64
import re
import string
import traceback
from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from libs.common.crypto import (
    BlindIndex,
    DecryptionError,
    FieldCipher,
    KeyRing,
    generate_key,
    normalise,
)
from tests.strategies import resident_ids

PROPERTY = settings(database=None, max_examples=200)

K1 = base64.b64encode(bytes(range(32))).decode()
K2 = base64.b64encode(bytes(range(100, 132))).decode()
K3 = base64.b64encode(bytes(range(200, 232))).decode()
INDEX_KEY = base64.b64encode(b"blind-index-key-for-tests-only!!").decode()

SECRET = "张三丰 220102199001011234 ZZ-DISTINCTIVE-PLAINTEXT"
CONTEXT = "recipient.id_number:42"
TOKEN_RE = re.compile(r"v1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")


def ring(config: str = f"k1:{K1},k2:{K2}", active: str | None = None) -> KeyRing:
    return KeyRing.from_config(config, active)


def cipher(config: str = f"k1:{K1},k2:{K2}", active: str | None = None) -> FieldCipher:
    return FieldCipher(ring(config, active))


def sealed_bytes(token: str) -> bytes:
    """The nonce + ciphertext + tag carried by a token."""
    body = token.split(".")[2]
    return base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))


def assert_no_leak(exc: BaseException, *secrets: str) -> None:
    """Neither the message nor the whole formatted traceback (chained causes included) leaks."""
    rendered = "".join(traceback.format_exception(exc)) + str(exc) + repr(exc)
    for secret in secrets:
        assert secret not in rendered


def decryption_error(fc: FieldCipher, token: str, context: str = CONTEXT) -> DecryptionError:
    with pytest.raises(DecryptionError) as info:
        fc.decrypt(token, context=context)
    return info.value


def config_error(config: str, active: str | None = None) -> ValueError:
    with pytest.raises(ValueError) as info:
        KeyRing.from_config(config, active)
    return info.value


# --- FieldCipher: round trips and token shape -------------------------------------------------


@PROPERTY
@given(plaintext=st.text(), context=st.text(min_size=1))
def test_round_trip_arbitrary_unicode(plaintext: str, context: str) -> None:
    fc = cipher()
    token = fc.encrypt(plaintext, context=context)
    assert fc.decrypt(token, context=context) == plaintext


@PROPERTY
@given(plaintext=st.text())
def test_token_is_compact_ascii(plaintext: str) -> None:
    token = cipher().encrypt(plaintext, context=CONTEXT)
    assert token.isascii()
    assert TOKEN_RE.fullmatch(token)
    assert "=" not in token
    raw = sealed_bytes(token)
    assert len(raw) == 12 + len(plaintext.encode()) + 16  # nonce + ciphertext + tag


def test_token_names_the_active_key() -> None:
    assert cipher().encrypt(SECRET, context=CONTEXT).startswith("v1.k2.")
    assert cipher(active="k1").encrypt(SECRET, context=CONTEXT).startswith("v1.k1.")


def test_ciphertext_differs_each_time() -> None:
    fc = cipher()
    tokens = {fc.encrypt(SECRET, context=CONTEXT) for _ in range(50)}
    assert len(tokens) == 50
    nonces = {sealed_bytes(t)[:12] for t in tokens}
    assert len(nonces) == 50
    assert all(fc.decrypt(t, context=CONTEXT) == SECRET for t in tokens)


@PROPERTY
@given(plaintext=st.text(min_size=8))
def test_ciphertext_does_not_contain_plaintext(plaintext: str) -> None:
    # min_size=8 makes a chance appearance in ~60 random characters/bytes negligible.
    token = cipher().encrypt(plaintext, context=CONTEXT)
    assert plaintext.encode() not in sealed_bytes(token)
    assert plaintext not in token


def test_ciphertext_does_not_contain_distinctive_plaintext() -> None:
    token = cipher().encrypt(SECRET, context=CONTEXT)
    for part in SECRET.split():
        assert part not in token
    assert "220102199001011234" not in token


def test_empty_string_round_trips() -> None:
    fc = cipher()
    assert fc.decrypt(fc.encrypt("", context=CONTEXT), context=CONTEXT) == ""


def test_optional_helpers_pass_none_through() -> None:
    fc = cipher()
    assert fc.encrypt_optional(None, context=CONTEXT) is None
    assert fc.decrypt_optional(None, context=CONTEXT) is None
    token = fc.encrypt_optional(SECRET, context=CONTEXT)
    assert token is not None
    assert fc.decrypt_optional(token, context=CONTEXT) == SECRET


def test_context_is_required() -> None:
    fc = cipher()
    with pytest.raises(ValueError, match="context"):
        fc.encrypt(SECRET, context="")
    token = fc.encrypt(SECRET, context=CONTEXT)
    with pytest.raises(ValueError, match="context"):
        fc.decrypt(token, context="")


def test_encrypt_rejects_non_str() -> None:
    with pytest.raises(TypeError):
        cipher().encrypt(b"bytes", context=CONTEXT)  # type: ignore[arg-type]


# --- FieldCipher: failures ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "other_context",
    [
        "recipient.id_number:43",  # copied to another row
        "recipient.name:42",  # copied to another field of the same row
        "recipient.id_number:42 ",
        "recipient.id_number:4",
    ],
)
def test_wrong_context_fails(other_context: str) -> None:
    fc = cipher()
    token = fc.encrypt(SECRET, context=CONTEXT)
    err = decryption_error(fc, token, other_context)
    assert_no_leak(err, SECRET, "220102199001011234", K1, K2)


@PROPERTY
@given(context=st.text(min_size=1), other=st.text(min_size=1))
def test_any_other_context_fails(context: str, other: str) -> None:
    if context == other:
        return
    fc = cipher()
    with pytest.raises(DecryptionError):
        fc.decrypt(fc.encrypt(SECRET, context=context), context=other)


def test_tampering_any_character_fails() -> None:
    """Replace every character of the token with every other printable ASCII character."""
    fc = cipher()
    for plaintext in (SECRET, "a", "ab", "abc", ""):  # different lengths exercise base64 tails
        token = fc.encrypt(plaintext, context=CONTEXT)
        for i, original in enumerate(token):
            for replacement in string.printable:
                if replacement == original:
                    continue
                tampered = token[:i] + replacement + token[i + 1 :]
                with pytest.raises(DecryptionError) as info:
                    fc.decrypt(tampered, context=CONTEXT)
                assert_no_leak(info.value, SECRET, K1, K2)


@PROPERTY
@given(data=st.data())
def test_tampering_any_bit_of_the_sealed_bytes_fails(data: st.DataObject) -> None:
    fc = cipher()
    plaintext = data.draw(st.text())
    token = fc.encrypt(plaintext, context=CONTEXT)
    head, body = token.rsplit(".", 1)
    raw = bytearray(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    index = data.draw(st.integers(min_value=0, max_value=len(raw) - 1))
    raw[index] ^= 1 << data.draw(st.integers(min_value=0, max_value=7))
    tampered = head + "." + base64.urlsafe_b64encode(bytes(raw)).rstrip(b"=").decode()
    with pytest.raises(DecryptionError):
        fc.decrypt(tampered, context=CONTEXT)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-1],  # truncated
        lambda t: t + "A",  # extended
        lambda t: t + "=",  # padding added
        lambda t: t.rsplit(".", 1)[0] + ".AAAA",  # too short to hold nonce and tag
        lambda t: t.replace("v1.", "v2.", 1),  # unknown version
        lambda t: t.replace("v1.", "", 1),  # missing version
        lambda t: t + ".extra",  # too many parts
        lambda t: t.replace(".", "", 1),  # too few parts
        lambda t: " " + t,
        lambda t: "",
    ],
)
def test_malformed_tokens_fail(mangle: Callable[[str], str]) -> None:
    fc = cipher()
    err = decryption_error(fc, mangle(fc.encrypt(SECRET, context=CONTEXT)))
    assert isinstance(err, ValueError)
    assert_no_leak(err, SECRET, K1, K2)


def test_decrypt_rejects_non_str_token() -> None:
    with pytest.raises(DecryptionError):
        cipher().decrypt(None, context=CONTEXT)  # type: ignore[arg-type]


def test_unknown_key_id_fails() -> None:
    token = cipher(f"k3:{K3}").encrypt(SECRET, context=CONTEXT)
    fc = cipher()
    err = decryption_error(fc, token)
    assert "k3" in str(err)  # the id helps operators; it is not secret
    assert_no_leak(err, SECRET, K1, K2, K3)
    with pytest.raises(DecryptionError):
        fc.needs_rotation("garbage")


def test_same_key_id_with_a_different_key_fails() -> None:
    token = cipher(f"k1:{K1}").encrypt(SECRET, context=CONTEXT)
    err = decryption_error(cipher(f"k1:{K2}"), token)
    assert_no_leak(err, SECRET, K1, K2)


def test_swapping_key_id_in_token_fails() -> None:
    fc = cipher()
    token = fc.encrypt(SECRET, context=CONTEXT)  # under k2
    err = decryption_error(fc, token.replace("v1.k2.", "v1.k1.", 1))
    assert_no_leak(err, SECRET, K1, K2)


def test_decryption_error_is_value_error() -> None:
    assert issubclass(DecryptionError, ValueError)


# --- Rotation ------------------------------------------------------------------------------------


def test_rotation_to_a_new_key() -> None:
    old = cipher(f"k1:{K1}")
    token = old.encrypt(SECRET, context=CONTEXT)
    assert old.key_id_of(token) == "k1"
    assert not old.needs_rotation(token)

    new = cipher(f"k1:{K1},k2:{K2}")  # k2 added and (being last) active
    assert new.keyring.active_key_id == "k2"
    assert new.decrypt(token, context=CONTEXT) == SECRET
    assert new.needs_rotation(token)

    rotated = new.rotate(token, context=CONTEXT)
    assert new.key_id_of(rotated) == "k2"
    assert not new.needs_rotation(rotated)
    assert new.decrypt(rotated, context=CONTEXT) == SECRET

    # Once every token is rotated, k1 can be retired.
    retired = cipher(f"k2:{K2}")
    assert retired.decrypt(rotated, context=CONTEXT) == SECRET
    with pytest.raises(DecryptionError):
        retired.decrypt(token, context=CONTEXT)


def test_rotate_keeps_tokens_already_under_the_active_key() -> None:
    fc = cipher()
    token = fc.encrypt(SECRET, context=CONTEXT)
    assert fc.rotate(token, context=CONTEXT) == token


def test_rotate_checks_context_and_integrity() -> None:
    token = cipher(f"k1:{K1}").encrypt(SECRET, context=CONTEXT)
    fc = cipher()
    with pytest.raises(DecryptionError):
        fc.rotate(token, context="recipient.id_number:43")
    with pytest.raises(DecryptionError):
        fc.rotate(token[:-2], context=CONTEXT)


def test_explicit_active_key() -> None:
    fc = cipher(f"k1:{K1},k2:{K2}", active="k1")
    assert fc.key_id_of(fc.encrypt(SECRET, context=CONTEXT)) == "k1"


# --- KeyRing configuration -------------------------------------------------------------------


def test_keyring_parses_config() -> None:
    kr = KeyRing.from_config(f" k1:{K1} , k2:{K2} ")
    assert kr.key_ids == ("k1", "k2")
    assert kr.active_key_id == "k2"
    assert kr.key("k1") == bytes(range(32))
    assert "k1" in kr
    assert "k9" not in kr


def test_keyring_repr_hides_keys() -> None:
    kr = ring()
    text = repr(kr) + str(kr)
    assert "k1" in text and "k2" in text
    for key in (K1, K2):
        assert key not in text
        assert repr(base64.b64decode(key)) not in text


@pytest.mark.parametrize(
    ("config", "active", "message"),
    [
        ("", None, "empty"),
        (f"k1:{K1},", None, "empty"),
        (f"k1:{K1},,k2:{K2}", None, "empty"),
        (K1, None, "<key id>:<base64>"),
        (f"k1:{K1},k1:{K2}", None, "duplicate key id 'k1'"),
        (f"k:1:{K1}", None, "':'"),
        (f"k 1:{K1}", None, "invalid key id"),
        (f"k.1:{K1}", None, "invalid key id"),
        (f":{K1}", None, "invalid key id"),
        (f"{'k' * 33}:{K1}", None, "invalid key id"),
        (f"k1:{K1[:-2]}", None, "not valid base64"),
        (f"k1:{K1[:-1]}!", None, "not valid base64"),
        (f"k1:{base64.b64encode(bytes(31)).decode()}", None, "exactly 32 bytes (got 31)"),
        (f"k1:{base64.b64encode(bytes(33)).decode()}", None, "exactly 32 bytes (got 33)"),
        (f"k1:{base64.b64encode(bytes(16)).decode()}", None, "exactly 32 bytes (got 16)"),
        (f"k1:{K1},k2:{K2}", "k3", "active key id 'k3'"),
    ],
)
def test_keyring_config_errors(config: str, active: str | None, message: str) -> None:
    err = config_error(config, active)
    assert message in str(err)
    assert_no_leak(err, K1, K2, K1[:-2], K1[:-1])


def test_keyring_constructor_validates() -> None:
    with pytest.raises(ValueError, match="empty"):
        KeyRing({}, "k1")
    with pytest.raises(ValueError, match="exactly 32 bytes"):
        KeyRing({"k1": bytes(16)}, "k1")
    with pytest.raises(ValueError, match="invalid key id"):
        KeyRing({"k,1": bytes(32)}, "k,1")
    with pytest.raises(ValueError, match="not in the key ring"):
        KeyRing({"k1": bytes(32)}, "k2")


def test_generate_key() -> None:
    keys = {generate_key() for _ in range(20)}
    assert len(keys) == 20
    for key in keys:
        assert len(base64.b64decode(key, validate=True)) == 32
    a, b = sorted(keys)[:2]
    fc = cipher(f"a:{a},b:{b}")
    assert fc.decrypt(fc.encrypt(SECRET, context=CONTEXT), context=CONTEXT) == SECRET
    assert BlindIndex.from_config(a).compute(SECRET, domain="d")


# --- BlindIndex --------------------------------------------------------------------------------


ID_DOMAIN = "recipient.id_number"


def index(key: str = INDEX_KEY) -> BlindIndex:
    return BlindIndex.from_config(key)


@PROPERTY
@given(value=st.text().filter(lambda v: normalise(v) != ""), domain=st.text(min_size=1))
def test_blind_index_is_deterministic_64_hex(value: str, domain: str) -> None:
    if "\x00" in domain:
        return
    bi = index()
    digest = bi.compute(value, domain=domain)
    assert re.fullmatch(r"[0-9a-f]{64}", digest)
    assert index().compute(value, domain=domain) == digest


@PROPERTY
@given(resident_id=resident_ids())
def test_blind_index_normalises_resident_ids(resident_id: str) -> None:
    bi = index()
    expected = bi.compute(resident_id, domain=ID_DOMAIN)
    full_width = "".join(chr(ord(c) + 0xFEE0) for c in resident_id.lower())
    for variant in (
        resident_id.lower(),
        f"  {resident_id}\t",
        f"\u3000{resident_id}\n",  # ideographic space
        full_width,  # ２２０１…ｘ as typed with a full-width IME
    ):
        assert bi.compute(variant, domain=ID_DOMAIN) == expected


def test_blind_index_normalisation_examples() -> None:
    bi = index()
    upper = bi.compute("220102199001011234X", domain=ID_DOMAIN)
    assert bi.compute("220102199001011234x", domain=ID_DOMAIN) == upper
    assert bi.compute(" 220102199001011234x ", domain=ID_DOMAIN) == upper
    assert bi.compute("２２０１０２１９９００１０１１２３４ｘ", domain=ID_DOMAIN) == upper
    assert bi.compute("220102199001011235X", domain=ID_DOMAIN) != upper
    assert bi.compute("13800138000", domain="recipient.phone") == bi.compute(
        "１３８００１３８０００", domain="recipient.phone"
    )


def test_blind_index_domain_separation() -> None:
    bi = index()
    value = "220102199001011234"
    assert bi.compute(value, domain="recipient.id_number") != bi.compute(
        value, domain="guardian.id_number"
    )
    # The NUL separator keeps (domain, value) pairs unambiguous.
    assert bi.compute("bc", domain="a") != bi.compute("c", domain="ab")


@PROPERTY
@given(value=resident_ids(), d1=st.text(min_size=1), d2=st.text(min_size=1))
def test_blind_index_domains_never_collide(value: str, d1: str, d2: str) -> None:
    if d1 == d2 or "\x00" in d1 + d2:
        return
    bi = index()
    assert bi.compute(value, domain=d1) != bi.compute(value, domain=d2)


def test_blind_index_different_keys_differ() -> None:
    other = base64.b64encode(b"another-blind-index-key-32-bytes").decode()
    value = "220102199001011234"
    assert index().compute(value, domain=ID_DOMAIN) != index(other).compute(value, domain=ID_DOMAIN)


def test_blind_index_is_the_documented_hmac() -> None:
    import hashlib
    import hmac

    key = base64.b64decode(INDEX_KEY)
    expected = hmac.new(key, b"recipient.name\x00ZHANG SAN", hashlib.sha256).hexdigest()
    assert index().compute("  zhang san ", domain="recipient.name") == expected


def test_blind_index_does_not_contain_the_value() -> None:
    digest = index().compute("220102199001011234", domain=ID_DOMAIN)
    assert "220102199001011234" not in digest
    assert repr(index()) == "BlindIndex(key=<hidden>)"
    assert INDEX_KEY not in repr(index())


def test_blind_index_key_validation() -> None:
    short = base64.b64encode(bytes(31)).decode()
    with pytest.raises(ValueError, match="at least 32 bytes") as info:
        BlindIndex.from_config(short)
    assert_no_leak(info.value, short)
    garbled = "not base64!!"  # a variable, so the traceback's source line does not show it
    with pytest.raises(ValueError, match="not valid base64") as info:
        BlindIndex.from_config(garbled)
    assert_no_leak(info.value, garbled)
    assert BlindIndex.from_config(base64.b64encode(bytes(48)).decode())
    with pytest.raises(TypeError):
        BlindIndex("a string key")  # type: ignore[arg-type]


def test_blind_index_rejects_bad_input() -> None:
    bi = index()
    with pytest.raises(ValueError, match="empty"):
        bi.compute("  \u3000 ", domain=ID_DOMAIN)
    with pytest.raises(ValueError, match="domain"):
        bi.compute("x", domain="")
    with pytest.raises(ValueError, match="domain"):
        bi.compute("x", domain="a\x00b")
    with pytest.raises(TypeError):
        bi.compute(None, domain=ID_DOMAIN)  # type: ignore[arg-type]
