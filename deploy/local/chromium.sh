#!/usr/bin/env bash
# Installs Debian's headless Chromium for the /status page test
# (cmd/wharf/status_browser_test.go), once: it does nothing when a Chromium
# is already there. The test finds it at /usr/bin/chromium, or at the path in
# WHARF_CHROMIUM. Run as root (CI and the dev machines are), or with sudo.
set -euo pipefail

for c in "${WHARF_CHROMIUM:-}" /usr/bin/chromium /usr/bin/chromium-browser; do
	if [[ -n "$c" && -x "$c" ]]; then
		exit 0
	fi
done

sudo=""
if [[ $(id -u) -ne 0 ]]; then
	sudo="sudo"
fi
echo "chromium.sh: installing Debian's chromium (for the /status browser test)" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >/dev/null
/usr/bin/chromium --version >&2
