#!/usr/bin/env bash
# Initialise a SoftHSM2 token for a CA data dir by hand, for operators who prefer
# softhsm2-util to `pki init` (which does the same through PKCS#11). PINs are read from
# files, never from arguments of this script.
#   hsm/init-token.sh DATA_DIR LABEL USER_PIN_FILE SO_PIN_FILE
set -euo pipefail
data_dir=$1 label=$2 pin_file=$3 so_pin_file=$4
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$data_dir/tokens" && chmod 700 "$data_dir" "$data_dir/tokens"
conf="$data_dir/softhsm2.conf"
[[ -f $conf ]] || sed "s|@TOKEN_DIR@|$data_dir/tokens|" "$here/softhsm2.conf.template" > "$conf"
chmod 600 "$conf"
# softhsm2-util only takes PINs as arguments; they are visible to this user's processes
# for the moment the command runs, which is why `pki init` (PKCS#11, no arguments) is the default.
SOFTHSM2_CONF=$conf softhsm2-util --init-token --free --label "$label" \
  --pin "$(cat "$pin_file")" --so-pin "$(cat "$so_pin_file")"
echo "token '$label' initialised in $data_dir (SOFTHSM2_CONF=$conf)"
