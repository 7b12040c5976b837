from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from revocast.errors import SettingsError
from revocast.keys import (
    PublicKey,
    SigningKey,
    create_signing_key,
    load_signing_keys,
    thumbprint,
)


def test_thumbprint_matches_rfc8037_example() -> None:
    # RFC 8037 appendix A.3: the Ed25519 example key's RFC 7638 thumbprint.
    x = "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"
    assert thumbprint(x) == "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"


def test_public_jwk_round_trips_without_private_material() -> None:
    key = SigningKey.generate()
    jwk = key.public.jwk
    assert "d" not in jwk
    assert jwk["kid"] == key.kid
    assert PublicKey.from_jwk(json.dumps(jwk)).kid == key.kid


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"kid": "someone-else"}, id="kid-not-thumbprint"),
        pytest.param({"alg": "HS256"}, id="other-alg"),
        pytest.param({"kty": "RSA"}, id="other-kty"),
        pytest.param({"d": "secret"}, id="private-part"),
    ],
)
def test_unusable_jwks_are_refused(change: dict[str, str]) -> None:
    jwk = SigningKey.generate().public.jwk | change
    with pytest.raises(ValueError, match="unusable JWK"):
        PublicKey.from_jwk(json.dumps(jwk))


def test_key_file_is_created_private_and_reloaded(tmp_path: Path) -> None:
    key = create_signing_key(tmp_path / "keys")
    (path,) = (tmp_path / "keys").glob("*.pem")
    assert path.stat().st_mode & 0o777 == 0o600
    assert [k.kid for k in load_signing_keys(tmp_path / "keys")] == [key.kid]


def test_key_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    create_signing_key(tmp_path)
    (path,) = tmp_path.glob("*.pem")
    os.chmod(path, 0o644)
    with pytest.raises(SettingsError, match="readable by others"):
        load_signing_keys(tmp_path)
