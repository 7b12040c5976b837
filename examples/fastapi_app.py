"""A FastAPI app whose routes revocast guards. Run it with several workers:

    REDIS_URL=redis://127.0.0.1:6379/0 uvicorn examples.fastapi_app:app --workers 4

Each worker starts its own verifier (a snapshot, then the stream) in the app's lifespan.
"""

import os

from fastapi import Depends, FastAPI, Security

from revocast.fastapi import AccessClaims, Revocast

auth = Revocast()  # settings from the environment: REDIS_URL, REVOCAST_ISSUER, ...
app = FastAPI(lifespan=auth.lifespan, exception_handlers=auth.exception_handlers)


@app.get("/me")
async def me(claims: AccessClaims = Depends(auth.authenticated)) -> dict[str, object]:
    return {"user": claims.sub, "roles": list(claims.roles), "worker": os.getpid()}


@app.post("/reports/{report_id}/hide")
async def hide(
    report_id: str, claims: AccessClaims = Security(auth.require, scopes=["moderator"])
) -> dict[str, str]:
    return {"hidden": report_id, "by": claims.sub}
