#!/bin/sh
# Entrypoint of the alloydb-ai-emulator image, in the manner of the official postgres image:
#
#   (no arguments) or `serve [flags]` or `--flag ...`  ->  alloydb-ai-emulator serve [flags]
#   anything else (psql, bash, alloydb-ai-emulator env-init, ...)  ->  run it as given
#
# Where to listen, the data directory and the model mode come from the ALLOYDB_AI_EMULATOR_*
# variables the Dockerfile sets (0.0.0.0:5432, /var/lib/alloydb-ai-emulator/pgdata, fake);
# `serve` reads them itself, so `docker run -e ALLOYDB_AI_EMULATOR_MODELS=live ...` just works.
#
# Password, as the official image does it: POSTGRES_PASSWORD (or POSTGRES_PASSWORD_FILE) sets the
# postgres user's password and makes connections use SCRAM; without one the container refuses to
# start unless POSTGRES_HOST_AUTH_METHOD=trust says that no password is wanted.
set -eu

# POSTGRES_PASSWORD_FILE (Docker secrets) -> POSTGRES_PASSWORD
if [ -n "${POSTGRES_PASSWORD_FILE:-}" ]; then
    if [ -n "${POSTGRES_PASSWORD:-}" ]; then
        echo "error: both POSTGRES_PASSWORD and POSTGRES_PASSWORD_FILE are set (they are exclusive)" >&2
        exit 1
    fi
    POSTGRES_PASSWORD="$(cat "$POSTGRES_PASSWORD_FILE")"
    export POSTGRES_PASSWORD
    unset POSTGRES_PASSWORD_FILE
fi

if [ "$#" -eq 0 ]; then
    set -- serve
fi
case "$1" in
    -*) set -- serve "$@" ;;
esac

if [ "$1" != "serve" ]; then
    exec "$@"
fi
shift

if [ -z "${POSTGRES_PASSWORD:-}" ] && [ -z "${ALLOYDB_AI_EMULATOR_PASSWORD:-}" ]; then
    if [ "${POSTGRES_HOST_AUTH_METHOD:-}" != "trust" ]; then
        cat >&2 <<'MSG'
error: the emulator's superuser has no password and POSTGRES_HOST_AUTH_METHOD is not "trust".
       Set one, as for the postgres and AlloyDB Omni images:
           docker run -e POSTGRES_PASSWORD=secret -p 5432:5432 alloydb-ai-emulator
       or allow connections without a password (never outside your machine):
           docker run -e POSTGRES_HOST_AUTH_METHOD=trust -p 5432:5432 alloydb-ai-emulator
MSG
        exit 1
    fi
    echo "warning: POSTGRES_HOST_AUTH_METHOD=trust: connections need no password" >&2
fi

# The superuser is postgres and the database postgres, as in AlloyDB Omni's image.
for name in POSTGRES_USER POSTGRES_DB; do
    eval "value=\${$name:-postgres}"
    if [ "$value" != "postgres" ]; then
        echo "warning: $name=$value is ignored: the emulator's user and database are postgres" >&2
    fi
done

exec alloydb-ai-emulator serve "$@"
