#!/usr/bin/env bash
# Regenerates requirements.lock from pyproject.toml: the runtime dependencies plus the `test`
# extra, resolved once for every platform and Python >= 3.11 (environment markers kept), from PyPI.
# Run it after editing pyproject.toml's dependencies; see docs/dependencies.md.
#   scripts/lock.sh                          keep current pins where still allowed, add what is new
#   scripts/lock.sh --upgrade                move every pin to the newest allowed release
#   scripts/lock.sh --upgrade-package NAME   move one package (and what it needs)
# uv (a pinned release, installed into a cache directory on first use) does the resolving.
set -euo pipefail
cd "$(dirname "$0")/.."

UV_VERSION=0.13.9
tool="${XDG_CACHE_HOME:-$HOME/.cache}/sopbot-lock/uv-$UV_VERSION"
if [ ! -x "$tool/bin/uv" ]; then
  python3 -m venv "$tool"
  "$tool/bin/pip" install -q "uv==$UV_VERSION"
fi

"$tool/bin/uv" pip compile pyproject.toml --extra test \
  --universal --python-version 3.11 \
  --index-url https://pypi.org/simple \
  --custom-compile-command scripts/lock.sh \
  --quiet --output-file requirements.lock "$@"
