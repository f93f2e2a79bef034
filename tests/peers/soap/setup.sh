#!/usr/bin/env bash
# Creates tests/peers/soap/.venv with the pinned zeep (wheels only, --no-deps: the list is
# complete) unless it already matches requirements.txt. Called by tools/test.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
venv="$here/.venv"
stamp="$venv/.requirements.sha256"
want=$(sha256sum "$here/requirements.txt" | cut -d' ' -f1)
if [ -x "$venv/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$want" ]; then
  exit 0
fi
echo "tests/peers/soap: creating the zeep venv"
rm -rf "$venv"
python3 -m venv "$venv"
"$venv/bin/pip" install --quiet --disable-pip-version-check --only-binary :all: --no-deps -r "$here/requirements.txt"
echo "$want" >"$stamp"
