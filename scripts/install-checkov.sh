#!/usr/bin/env bash
# Install checkov (PyPI) into a virtualenv of its own under the cache, keyed by its version: its
# pins (packaging, python-dateutil, ...) conflict with the project's, so it never joins .venv.
# A warm cache installs nothing. Prints the checkov binary's path as its last line.
set -euo pipefail
version=${CHECKOV_VERSION:-3.3.30}
python=${PYTHON:-python3}
dir=${CALLPLATFORM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/callplatform}/tools/checkov-$version
if [[ ! -f $dir/.done ]]; then
	echo "[checkov] installing checkov $version into $dir" >&2
	# In place (a virtualenv cannot be moved: its scripts name their interpreter); .done comes last.
	rm -rf "$dir"
	"$python" -m venv "$dir"
	"$dir/bin/pip" install -q --disable-pip-version-check "checkov==$version" >&2
	touch "$dir/.done"
fi
echo "$dir/bin/checkov"
