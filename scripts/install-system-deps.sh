#!/usr/bin/env bash
# Installs the system tools the test suite uses, from Debian's packages, when missing.
# Without root (or apt), it says what is missing; the tests that need it skip with a reason.
set -euo pipefail

needed=()
command -v curl >/dev/null 2>&1 || needed+=(curl)
command -v h2load >/dev/null 2>&1 || needed+=(nghttp2-client)
# The broadcast tests run a real Redis (pub/sub across server processes).
command -v redis-server >/dev/null 2>&1 || needed+=(redis-server)
[ -x /usr/bin/chromium ] || needed+=(chromium)  # the HTTP/3 browser test

if [ ${#needed[@]} -eq 0 ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  echo "install-system-deps: missing ${needed[*]} (not root or no apt-get); tests needing them will skip" >&2
  exit 0
fi
echo "install-system-deps: installing ${needed[*]}"
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${needed[@]}" >/dev/null
