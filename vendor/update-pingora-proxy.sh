#!/bin/sh
# Re-create vendor/pingora-proxy from a pingora-proxy release on crates.io with
# vendor/pingora-proxy.patch applied. Usage: vendor/update-pingora-proxy.sh [VERSION]
# (default: the version vendored now). When a hunk no longer applies, the script stops and
# leaves the tree as it was; see vendor/README.md for what each hunk is for.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
current=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$here/pingora-proxy/Cargo.toml" | head -n 1)
version=${1:-$current}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
url="https://static.crates.io/crates/pingora-proxy/pingora-proxy-$version.crate"
echo "fetching $url"
curl -fsSL "$url" -o "$work/crate.tar.gz"
tar -xzf "$work/crate.tar.gz" -C "$work"
src="$work/pingora-proxy-$version"
rm -f "$src/Cargo.lock" "$src/.cargo_vcs_info.json"
if ! (cd "$src" && patch -p1 --forward --no-backup-if-mismatch < "$here/pingora-proxy.patch"); then
    echo "the patch does not apply to pingora-proxy $version: vendor/pingora-proxy is unchanged" >&2
    exit 1
fi
rm -rf "$here/pingora-proxy"
mv "$src" "$here/pingora-proxy"
echo "vendor/pingora-proxy is now pingora-proxy $version with the patch applied."
echo "Next: set the pingora version in Cargo.toml to $version, cargo update -p pingora, cargo test --locked."
