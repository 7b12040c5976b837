"""A FastAPI app whose routes revocast guards. Beside a running `./scripts/run`, from the
repository's folder:

    .venv/bin/uvicorn examples.fastapi_app:app --port 8002

With `--workers 4`, each worker starts its own verifier (a snapshot, then the stream) in the
app's lifespan.
Its settings come from the environment (REDIS_URL, REVOCAST_ISSUER, ...); with REDIS_URL
unset, it finds the Redis of the `revocast stack` running in this folder, as the CLI does.
"""

import os
import sys
from pathlib import Path

from fastapi import Depends, FastAPI, Security

from revocast.errors import SettingsError
from revocast.fastapi import AccessClaims, Revocast
from revocast.local_stack import settings_here

try:
    settings = settings_here(Path.cwd())
except SettingsError as exc:
    sys.exit(f"examples.fastapi_app: {exc.detail}")  # one line, not a traceback

auth = Revocast(settings)
app = FastAPI(lifespan=auth.lifespan, exception_handlers=auth.exception_handlers)


@app.get("/me")
async def me(claims: AccessClaims = Depends(auth.authenticated)) -> dict[str, object]:
    return {"user": claims.sub, "roles": list(claims.roles), "worker": os.getpid()}


@app.post("/reports/{report_id}/hide")
async def hide(
    report_id: str, claims: AccessClaims = Security(auth.require, scopes=["moderator"])
) -> dict[str, str]:
    return {"hidden": report_id, "by": claims.sub}
