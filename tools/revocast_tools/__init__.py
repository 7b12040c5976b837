"""What runs beside revocast, never inside the issuer or a verifier.

``revocast chaos`` (fault scenarios against private processes), ``revocast stack`` (the
whole system on one machine), the embedded Redis launcher and the TCP fault proxy that
the chaos harness and the tests put between a verifier and Redis. The production image
installs ``revocast`` alone; ``scripts/setup`` installs this package beside it.
"""
