#!/usr/bin/env bash
# Make sure a Docker engine answers here: install Debian's (docker.io, docker-compose,
# debootstrap for docker/base-image.sh) when missing, and start dockerd when it is not
# running (machines without systemd). Needs root for either; says what to do otherwise.
#
#   docker/engine.sh            (make test-deploy runs it)
#   docker/engine.sh --stop     stop the dockerd this script started, if it did (images and
#                               volumes stay on disk); an engine started otherwise is left
set -euo pipefail

log="${RECO_DOCKERD_LOG:-/var/log/reco-dockerd.log}"
started="${RECO_DOCKERD_PIDFILE:-/run/reco-dockerd.pid}"

if [ "${1:-}" = "--stop" ]; then
    if [ -s "$started" ] && kill -0 "$(cat "$started")" 2>/dev/null; then
        pid=$(cat "$started")
        kill "$pid"
        for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
        echo "docker engine: stopped the dockerd started for the tests (pid $pid)"
    fi
    rm -f "$started"
    exit 0
fi

need_root() {
    if [ "$(id -u)" != 0 ]; then
        echo "ERROR: $1 needs root: run as root, or $2" >&2
        exit 1
    fi
}

missing=()
command -v dockerd >/dev/null || missing+=(docker.io)
command -v docker-compose >/dev/null || docker compose version >/dev/null 2>&1 || missing+=(docker-compose)
command -v debootstrap >/dev/null || missing+=(debootstrap)
if [ "${#missing[@]}" -gt 0 ]; then
    need_root "installing ${missing[*]}" "install them yourself (apt-get install ${missing[*]})"
    echo "docker engine: installing ${missing[*]} from Debian"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if docker info >/dev/null 2>&1; then
    echo "docker engine: running ($(docker version --format '{{.Server.Version}}'))"
    exit 0
fi
need_root "starting dockerd" "start the Docker service (systemctl start docker)"
echo "docker engine: starting dockerd (log: $log)"
nohup dockerd >"$log" 2>&1 &
echo $! >"$started"
for _ in $(seq 1 60); do
    if docker info >/dev/null 2>&1; then
        echo "docker engine: running ($(docker version --format '{{.Server.Version}}'))"
        exit 0
    fi
    sleep 1
done
echo "ERROR: dockerd did not answer within 60 s; its log:" >&2
tail -20 "$log" >&2
exit 1
