#!/usr/bin/env bash
# Creates DIR/.venv with the pinned wheels of DIR/requirements.txt (--only-binary, --no-deps:
# the list is complete) unless it already matches that file. Used by the peers' setup.sh.
#   tests/peers/venv.sh DIR WHAT
set -euo pipefail
here=$(cd "$1" && pwd)
venv="$here/.venv"
stamp="$venv/.requirements.sha256"
want=$(sha256sum "$here/requirements.txt" | cut -d' ' -f1)
if [ -x "$venv/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  exit 0
fi
echo "$here: creating the $2 venv"
rm -rf "$venv"
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check --only-binary :all: --no-deps -r "$here/requirements.txt"
echo "$want" >"$stamp"
