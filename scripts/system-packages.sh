#!/usr/bin/env bash
# Debian packages the project needs beyond Python: a Chinese font for printed notices (PDF)
# and, for the test suite, Chromium for the browser tests. Installs only what is missing.
set -euo pipefail
with_browser="${1:-}"
wanted=()
fc-list :lang=zh 2>/dev/null | grep -q . || wanted+=(fonts-wqy-microhei)
ldconfig -p 2>/dev/null | grep -q libpango-1.0 || wanted+=(libpango-1.0-0 libpangoft2-1.0-0)
if [ "$with_browser" = "browser" ] && [ ! -x /usr/bin/chromium ]; then
    wanted+=(chromium)
fi
[ ${#wanted[@]} -eq 0 ] && exit 0
if ! command -v apt-get >/dev/null; then
    echo "loanflow: please install ${wanted[*]} (no apt-get on this machine)" >&2
    exit 1
fi
sudo=""
[ "$(id -u)" -ne 0 ] && sudo="sudo"
echo "loanflow: installing ${wanted[*]} from Debian's packages" >&2
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq >/dev/null || true
$sudo apt-get install -y -qq --no-install-recommends "${wanted[@]}" >/dev/null
