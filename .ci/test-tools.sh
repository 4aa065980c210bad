#!/usr/bin/env bash
# The tools the test suite runs besides node (Debian packages, installed when
# missing; CI and the developers' machines run as root): libfaketime, for the
# tests whose processes run on a real clock days or years off. Used by
# `npm test` (pretest) and by .ci/run. Never fails the run itself: a test that
# needs a missing tool fails with the reason.
set -u
if ! command -v faketime >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing faketime (Debian package) for the clock-skew tests" >&2
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq faketime; } >&2 || echo "warning: could not install faketime" >&2
  else
    echo "warning: faketime is missing (apt-get install faketime); the clock-skew tests will fail" >&2
  fi
fi
exit 0
