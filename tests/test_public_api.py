from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import revocast
import revocast.issuer
import revocast.verifier


def test_verifier_exports() -> None:
    assert revocast.verifier.__all__ == [
        "AccessClaims",
        "RevocastMiddleware",
        "TokenRejected",
        "Verifier",
        "VerifierStale",
        "create_sidecar",
        "sidecar_from_env",
    ]
    for name in revocast.verifier.__all__:
        assert getattr(revocast.verifier, name) is not None


def test_other_exports() -> None:
    assert revocast.__all__ == ["RevocastError", "Settings", "__version__"]
    assert issubclass(revocast.verifier.TokenRejected, revocast.RevocastError)
    assert revocast.issuer.__all__ == ["create_app"]


def test_decoding_without_the_revocation_check_is_the_issuers_alone() -> None:
    """``Verifier.verify`` is the only public way to check a token on an API node."""
    public = [name for name in dir(revocast.verifier.Verifier) if not name.startswith("_")]
    assert "decode" not in public
    assert "verify" in public


def test_no_generic_top_level_packages(tmp_path: Path) -> None:
    """API nodes import revocast.*; the tree's services/ and shared/ are not packages users see."""
    probe = (
        "import importlib.util as u; "
        "print([n for n in ('services', 'shared', 'revocast.verifier') if u.find_spec(n)])"
    )
    # Run outside the checkout, as an installed user would.
    out = subprocess.run(
        [sys.executable, "-c", probe], cwd=tmp_path, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "['revocast.verifier']"
