#!/usr/bin/env bash
# Creates tests/peers/saml/.venv with the pinned pysaml2 (see ../venv.sh). Called by tools/test.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
exec "$here/../venv.sh" "$here" pysaml2
