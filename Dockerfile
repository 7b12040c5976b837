# revocast issuer / verifier image. Build: docker build -t revocast:local .
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    REVOCAST_KEY_DIR=/keys

# Runtime only: no [dev] extra, and no revocast-tools (tools/ is not in the build context:
# no chaos harness, stack or embedded Redis in the image). The source tree is not kept.
# Every dependency, and the build backend, at the version requirements/runtime.lock pins, each
# file checked against its hash; then the package itself, which fetches nothing more.
COPY . /tmp/revocast
RUN pip install --require-hashes -r /tmp/revocast/requirements/runtime.lock \
    && pip install --no-deps --no-build-isolation /tmp/revocast \
    && pip check \
    && rm -rf /tmp/revocast

# Unprivileged user; /keys is created here so a fresh named volume inherits owner and 0700.
RUN useradd --system --uid 10001 --user-group --create-home --home-dir /home/revocast \
        --shell /usr/sbin/nologin revocast \
    && install -d -o revocast -g revocast -m 0700 /keys

USER revocast
WORKDIR /home/revocast
EXPOSE 8000 8001

# No ENTRYPOINT: compose.yaml gives full commands (`revocast issuer ...`, `revocast verifier ...`).
CMD ["revocast", "issuer", "--host", "0.0.0.0", "--port", "8000"]
