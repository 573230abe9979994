#!/usr/bin/env bash
# Installs what `npm run bench` needs from Debian's packages, only when something is missing.
set -euo pipefail
need=()
command -v cfssl >/dev/null || need+=(golang-cfssl)
command -v wrk >/dev/null || need+=(wrk)
command -v pebble >/dev/null || need+=(pebble)
command -v ab >/dev/null || need+=(apache2-utils)
command -v softhsm2-util >/dev/null || need+=(softhsm2)
command -v openssl >/dev/null || need+=(openssl)
[[ -x /usr/bin/time ]] || need+=(time)
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
if ((${#need[@]})); then
  echo "bench/setup.sh: installing ${need[*]}" >&2
  SUDO=""
  [[ "$(id -u)" == 0 ]] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
