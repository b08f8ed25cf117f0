#!/usr/bin/env bash
# Install the BitTorrent engines the interop tests run against (issue 10):
#   aria2c and transmission-cli from Debian (apt-get, only when root, as in CI);
#   webtorrent from npm into .engines/node_modules (project-local, git-ignored).
# libtorrent comes with pip's `test` extra (pyproject.toml), not from here.
#
# Idempotent and fast once installed: nothing is fetched when every engine is there.
# A part that cannot be installed (not root, no npm, no network) is reported and
# skipped: its interop cells then skip with the reason, and CI fails on such skips.
set -uo pipefail
cd "$(dirname "$0")/.."

ENGINES_DIR="${P2PSHARE_ENGINES_DIR:-.engines}"
SRC=scripts/engines
say() { echo "engines: $*"; }

# --- Debian: aria2c, transmission-cli ---------------------------------------
missing=()
command -v aria2c >/dev/null 2>&1 || missing+=(aria2)
command -v transmission-cli >/dev/null 2>&1 || missing+=(transmission-cli)
if [ ${#missing[@]} -eq 0 ]; then
  say "aria2c and transmission-cli present"
elif [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  say "skipping ${missing[*]}: not root or no apt-get (install them yourself: apt-get install ${missing[*]});" \
      "their interop cells will skip"
else
  say "apt-get install ${missing[*]}"
  apt_opts=(-q -o DPkg::Lock::Timeout=300)
  if DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" install -y "${missing[@]}" >/dev/null 2>&1 \
     || { apt-get "${apt_opts[@]}" update >/dev/null 2>&1 \
          && DEBIAN_FRONTEND=noninteractive apt-get "${apt_opts[@]}" install -y "${missing[@]}" >/dev/null; }; then
    say "installed ${missing[*]}"
  else
    say "apt-get could not install ${missing[*]} (offline?); their interop cells will skip"
  fi
fi

# --- npm: webtorrent ----------------------------------------------------------
# Two dependencies' install scripts download prebuilt binaries, which fails offline,
# so scripts are off; node-datachannel (WebRTC, never used by TCP peers) is replaced
# by the stub in scripts/engines/ through package.json's "overrides".
stamp_of() { cat "$SRC/package.json" "$SRC/package-lock.json" "$SRC"/node-datachannel-stub/* 2>/dev/null | sha256sum | cut -c1-16; }
want="$(stamp_of)"
if [ -x "$ENGINES_DIR/node_modules/.bin/webtorrent" ] && [ "$(cat "$ENGINES_DIR/.stamp" 2>/dev/null)" = "$want" ]; then
  say "webtorrent present in $ENGINES_DIR"
elif ! command -v npm >/dev/null 2>&1 || ! command -v node >/dev/null 2>&1; then
  say "skipping webtorrent: node and npm are needed (apt-get install nodejs npm); its interop cells will skip"
else
  say "npm install webtorrent into $ENGINES_DIR"
  mkdir -p "$ENGINES_DIR"
  rm -rf "$ENGINES_DIR/node-datachannel-stub"
  cp -r "$SRC/package.json" "$SRC/node-datachannel-stub" "$ENGINES_DIR/"
  if [ -f "$SRC/package-lock.json" ]; then
    cp "$SRC/package-lock.json" "$ENGINES_DIR/"
    npm_cmd=(ci)
  else
    npm_cmd=(install)
  fi
  # Bounded: offline, npm would otherwise retry for many minutes.
  if (cd "$ENGINES_DIR" && timeout "${P2PSHARE_NPM_TIMEOUT:-300}" npm "${npm_cmd[@]}" --ignore-scripts \
        --no-audit --no-fund --loglevel=error --prefer-offline --fetch-retries=1 --fetch-timeout=30000 \
        >npm-install.log 2>&1) && [ -x "$ENGINES_DIR/node_modules/.bin/webtorrent" ]; then
    echo "$want" >"$ENGINES_DIR/.stamp"
    say "installed webtorrent $(cd "$ENGINES_DIR" && node -p "require('./node_modules/webtorrent/package.json').version")"
  else
    say "npm could not install webtorrent (offline?), see $ENGINES_DIR/npm-install.log; its interop cells will skip"
  fi
fi
exit 0
