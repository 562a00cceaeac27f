#!/usr/bin/env bash
# Installs what the extension's end-to-end test needs: Debian's chromium, code-server (a real
# VS Code, from the npm registry) and playwright-core. Idempotent: a stamp in the cache folder
# records the lockfile it was installed from, and a second run with the same lockfile does nothing.
#
# Follows /work/shared/reference/VSCODE-E2E.md: no browser or VS Code downloads, only apt and npm.
# Cache folder: $CUTLENS_E2E_DIR (default <repo>/.e2e, git-ignored).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
cache="${CUTLENS_E2E_DIR:-$repo/.e2e}"
stamp="$cache/.setup-stamp"
want="$(cat "$here/package.json" "$here/package-lock.json" "$here/setup.sh" | sha256sum | cut -d' ' -f1)"

log() { printf '[e2e setup] %s\n' "$*"; }

# --- apt: chromium, ripgrep and the toolchain node-gyp needs for code-server's native modules.
apt_pkgs=(chromium ripgrep build-essential pkg-config libkrb5-dev)
missing=()
for p in "${apt_pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if ((${#missing[@]})); then
  log "apt-get install ${missing[*]}"
  sudo_cmd=()
  [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null
fi

if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
  log "up to date ($cache)"
  exit 0
fi

# --- npm: code-server + playwright-core, from the pinned lockfile, no install scripts
# (code-server's postinstall and argon2's prebuilt download both need the internet).
log "installing code-server and playwright-core into $cache"
mkdir -p "$cache"
rm -f "$stamp"
cp "$here/package.json" "$here/package-lock.json" "$cache/"
node_prefix="$(dirname "$(dirname "$(command -v node)")")"
[[ -d "$node_prefix/include/node" ]] || { echo "no Node headers under $node_prefix/include/node" >&2; exit 1; }
export npm_config_nodedir="$node_prefix"   # node-gyp: use local headers, never download them
export npm_config_audit=false npm_config_fund=false npm_config_update_notifier=false

cd "$cache"
npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
npm_config_build_from_source=true npm rebuild argon2 --loglevel=error

# --- code-server's postinstall, by hand (lib/vscode's own dependencies and native modules).
vscode="$cache/node_modules/code-server/lib/vscode"
cd "$vscode"
npm install --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error
mkdir -p node_modules/@vscode/ripgrep/bin
cp "$(command -v rg)" node_modules/@vscode/ripgrep/bin/rg
npm_config_yes=true npm rebuild --foreground-scripts --loglevel=error >"$cache/rebuild.log" 2>&1 \
  || { tail -40 "$cache/rebuild.log" >&2; exit 1; }
ln -sfn node_modules node_modules.asar
ln -sfn code-linux.sh bin/remote-cli/code-server
ln -sfn browser-linux.sh bin/helpers/browser.sh
cd extensions
npm install --omit=dev --no-audit --no-fund --loglevel=error

echo "$want" >"$stamp"
log "done"
