#!/bin/sh
# Installs wrk (the HTTP load generator `make bench` uses) from Debian's packages.
# Called by tests/bench/run.py when `command -v wrk` fails. Needs root (or sudo).
set -eu
if command -v wrk >/dev/null 2>&1; then
    exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO="sudo -n"
    else
        echo "install-wrk: not root and no sudo; install wrk yourself (apt-get install wrk)" >&2
        exit 1
    fi
fi
export DEBIAN_FRONTEND=noninteractive
if ! $SUDO apt-get install -y -q wrk; then
    $SUDO apt-get update -q
    $SUDO apt-get install -y -q wrk
fi
command -v wrk >/dev/null 2>&1
