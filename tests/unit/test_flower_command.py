"""`flower_command`: Flower's arguments and environment; credentials, addresses and TLS files it cannot use."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from pydantic import SecretStr

from farm.errors import SpecError
from farm.settings import Settings
from scheduler.flower import AUTH_VARIABLE, flower_command, listens_on_loopback_only

BROKER = SecretStr("redis://:broker-pass@127.0.0.1:6379/0")


def lab(auth: str | None) -> Settings:
    return Settings(broker_url=BROKER, flower_auth=None if auth is None else SecretStr(auth))


def test_the_password_goes_to_the_environment_never_to_the_arguments() -> None:
    # Given a credential with a colon in its password
    # When
    argv, env = flower_command(lab("admin:pa:ss"), address="0.0.0.0", port=5555)

    # Then
    assert argv == ["flower", "--address=0.0.0.0", "--port=5555"]
    assert env == {AUTH_VARIABLE: "admin:pa:ss"}
    assert not any("pa:ss" in a for a in argv)


@pytest.mark.parametrize(("credential", "says"), [
    ("admin:pa,ss", "cannot contain ','"),
    ("ad,min:pass", "cannot contain ','"),
    ("admin:", "must both be non-empty"),
    (":pass", "must both be non-empty"),
    ("adminpass", "must be user:password"),
    ("admin:pa\nss", "control characters"),
])
def test_a_credential_flower_cannot_use_is_refused_without_showing_the_password(credential: str, says: str) -> None:
    with pytest.raises(SpecError) as refused:
        flower_command(lab(credential), address="127.0.0.1", port=5555)
    assert says in str(refused.value)
    assert "pa" not in str(refused.value).replace("password", "")


@pytest.mark.parametrize("address", ["localhost", "127.0.0.1", "::1"])
def test_loopback_by_name_or_address_needs_no_password(address: str) -> None:
    assert listens_on_loopback_only(address)
    argv, env = flower_command(lab(None), address=address, port=5555)
    assert f"--address={address}" in argv and env == {}


def test_off_loopback_without_a_password_is_refused() -> None:
    assert not listens_on_loopback_only("0.0.0.0")
    with pytest.raises(SpecError, match="without a password"):
        flower_command(lab(None), address="0.0.0.0", port=5555)


@pytest.mark.parametrize(("address", "says"), [
    ("no-such-host.invalid", "cannot resolve it"),
    ("", "--address is empty"),
    ("x" * 300, "cannot resolve it"),
])
def test_an_address_that_does_not_resolve_is_one_line(address: str, says: str) -> None:
    with pytest.raises(SpecError) as refused:
        flower_command(lab("admin:pass"), address=address, port=5555)
    assert says in str(refused.value)
    assert "\n" not in str(refused.value) and len(str(refused.value)) < 200


def test_no_broker_and_a_bad_port_are_refused() -> None:
    with pytest.raises(SpecError, match="FARM_BROKER_URL is not set"):
        flower_command(Settings(broker_url=None), address="127.0.0.1", port=5555)
    with pytest.raises(SpecError, match="between 1 and 65535"):
        flower_command(lab(None), address="127.0.0.1", port=70000)


@pytest.fixture
def pair(tmp_path: Path) -> tuple[Path, Path]:
    """A self-signed certificate and its key, made by openssl."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out", str(cert),
                    "-days", "2", "-subj", "/CN=localhost"], check=True, capture_output=True, timeout=30)
    return cert, key


def test_a_certificate_and_its_key_serve_https(pair: tuple[Path, Path]) -> None:
    cert, key = pair
    argv, _ = flower_command(lab("admin:pass"), address="127.0.0.1", port=5555, certfile=cert, keyfile=key)
    assert argv[-2:] == [f"--certfile={cert}", f"--keyfile={key}"]


def test_half_a_pair_a_missing_file_or_a_mismatched_pair_is_refused(pair: tuple[Path, Path], tmp_path: Path) -> None:
    cert, key = pair
    with pytest.raises(SpecError, match="go together"):
        flower_command(lab("admin:pass"), address="127.0.0.1", port=5555, certfile=cert)
    with pytest.raises(SpecError, match="go together"):
        flower_command(lab("admin:pass"), address="127.0.0.1", port=5555, keyfile=key)
    with pytest.raises(SpecError, match="no such file"):
        flower_command(lab("admin:pass"), address="127.0.0.1", port=5555, certfile=cert, keyfile=tmp_path / "nope")
    with pytest.raises(SpecError, match="cannot use them"):  # the certificate given as its own key
        flower_command(lab("admin:pass"), address="127.0.0.1", port=5555, certfile=cert, keyfile=cert)
