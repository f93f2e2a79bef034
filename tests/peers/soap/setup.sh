#!/usr/bin/env bash
# Creates tests/peers/soap/.venv with the pinned zeep (see ../venv.sh). Called by tools/test.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
exec "$here/../venv.sh" "$here" zeep
