#!/usr/bin/env bash
# The tools the test suite runs besides node (Debian packages, installed when
# missing; CI and the developers' machines run as root): libfaketime, for the
# tests whose processes run on a real clock days or years off, and
# redis-server (with redis-cli), for the Redis backend's tests, which run
# against a real server. Used by `npm test` (pretest) and by .ci/run. Never
# fails the run itself: a test that needs a missing tool fails with the
# reason.
set -u
missing=()
command -v faketime >/dev/null 2>&1 || missing+=(faketime)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
[ "${#missing[@]}" -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing ${missing[*]} (Debian packages) for the clock-skew and Redis tests" >&2
  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"; } >&2 || echo "warning: could not install ${missing[*]}" >&2
else
  echo "warning: ${missing[*]} missing (apt-get install ${missing[*]}); the clock-skew and Redis tests will fail" >&2
fi
exit 0
