#!/usr/bin/env bash
# Initialise a SoftHSM2 token for a CA data dir by hand, before `pki init` (which does the
# same itself). It goes through the hsm package's key backend, so PINs are read from
# files and never appear on a command line (softhsm2-util would take them as arguments).
#   hsm/init-token.sh DATA_DIR LABEL USER_PIN_FILE SO_PIN_FILE
set -euo pipefail
[[ $# -eq 4 ]] || { echo "usage: hsm/init-token.sh DATA_DIR LABEL USER_PIN_FILE SO_PIN_FILE" >&2; exit 2; }
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$1" && chmod 700 "$1"
data_dir=$(realpath -- "$1") pin_file=$(realpath -- "$3") so_pin_file=$(realpath -- "$4")
# from the repository, where tsx is installed
cd "$here/.." && exec node --import tsx packages/hsm/scripts/provision-token.ts "$data_dir" "$2" "$pin_file" "$so_pin_file"
