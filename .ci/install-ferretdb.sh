#!/usr/bin/env bash
# Builds FerretDB v1 (MongoDB wire protocol over SQLite) from the Go module proxy and caches the
# binary. A plain `go install` yields a binary that panics at start: its version package needs a
# generated build/version/version.txt, so we build from the downloaded module with that file written.
set -euo pipefail
VERSION="${FERRETDB_VERSION:-v1.24.2}"
BIN_DIR="${SYNC_TOOLS_DIR:-$HOME/.cache/edgesync/bin}"
BIN="$BIN_DIR/ferretdb"
# (Output captured first: under pipefail, `grep -q` or `head` closing the pipe early would make the
# writer die of SIGPIPE and the whole check fail.)
if [ -x "$BIN" ] && [[ "$("$BIN" --version 2>/dev/null || true)" == *"${VERSION#v}"* ]]; then
  echo "ferretdb $VERSION already at $BIN"; exit 0
fi
command -v go >/dev/null || { echo "go is required to build FerretDB" >&2; exit 1; }
mkdir -p "$BIN_DIR"
export GOFLAGS=-mod=mod GOTOOLCHAIN=local
SRC_JSON=$(cd /tmp && go mod download -json "github.com/FerretDB/FerretDB@$VERSION")
SRC_DIR=$(printf '%s' "$SRC_JSON" | python3 -c 'import json,sys; print(json.load(sys.stdin)["Dir"])')
WORK=$(mktemp -d)
trap 'chmod -R u+w "$WORK"; rm -rf "$WORK"' EXIT
cp -r "$SRC_DIR/." "$WORK/"
chmod -R u+w "$WORK"
echo "$VERSION" > "$WORK/build/version/version.txt"
(cd "$WORK" && CGO_ENABLED=0 go build -trimpath -o "$BIN" ./cmd/ferretdb)
printf '%s\n' "$("$BIN" --version)" | sed -n 1,3p
echo "ferretdb built at $BIN"
