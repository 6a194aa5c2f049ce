#!/usr/bin/env bash
# Builds vagoth's test guest offline from Debian packages: a cloud kernel (serial console built
# in) and an initramfs of busybox-static whose /init is ./init. Output, in $1 or .tools/guest:
#   vmlinuz, initramfs.gz   direct kernel boot files, readable by the qemu user
# Skips the build when the output matches these scripts and the kernel package.
# Needs root (or sudo) only for apt-get update when the package lists are missing.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/../../.tools/guest}
mkdir -p "$out"
out=$(cd "$out" && pwd)

kernel_meta=linux-image-cloud-amd64
# The modules the cloud kernel does not build in: the virtio disk and NIC, the ACPI power
# button, and ISO 9660 for the cloud-init seed.
wanted_modules=(virtio_pci virtio_blk virtio_net button evdev isofs)

kernel_package() { apt-cache depends "$kernel_meta" 2>/dev/null | sed -n 's/^ *Depends: \(linux-image-.*\)$/\1/p' | head -n 1; }
package=$(kernel_package)
if [ -z "$package" ]; then
  if [ "$(id -u)" -eq 0 ]; then apt-get update -qq; else sudo apt-get update -qq; fi
  package=$(kernel_package)
fi
[ -n "$package" ] || { echo "guest: apt knows no $kernel_meta; is a Debian mirror configured?" >&2; exit 1; }

stamp=$(cat "$here/build.sh" "$here/init" "$here/power-button" <(echo "$package") | sha256sum | cut -c1-16)
if [ -f "$out/stamp" ] && [ "$(cat "$out/stamp")" = "$stamp" ] && [ -f "$out/vmlinuz" ] && [ -f "$out/initramfs.gz" ]; then
  exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
# As root, apt's download sandbox user cannot write here; the files are only unpacked, never installed.
apt-get download -qq -o APT::Sandbox::User=root "$package" busybox-static
dpkg-deb -x linux-image-*.deb kernel
dpkg-deb -x busybox-static_*.deb busybox

root=$work/root
mkdir -p "$root"/{bin,dev,proc,sys,etc/acpi/PWRF,lib/modules}
cp busybox/bin/busybox "$root/bin/busybox"
for applet in $("$root/bin/busybox" --list); do
  [ "$applet" = busybox ] || ln -sf busybox "$root/bin/$applet"
done

modules_dir=$(echo kernel/lib/modules/*/kernel)
module_file() { find "$modules_dir" -name "$1.ko" -print -quit; }
# Depth first, dependencies before dependents: the order insmod needs.
declare -A listed=()
order=()
add_module() {
  local name=$1 file deps dep
  [ -n "${listed[$name]:-}" ] && return
  listed[$name]=1
  file=$(module_file "$name")
  [ -n "$file" ] || { echo "guest: module $name is not in $package" >&2; exit 1; }
  deps=$(grep -a -o 'depends=[a-z0-9_,-]*' "$file" | head -n 1 | cut -d= -f2)
  for dep in ${deps//,/ }; do add_module "$dep"; done
  cp "$file" "$root/lib/modules/$name.ko"
  order+=("$name")
}
for m in "${wanted_modules[@]}"; do add_module "$m"; done
printf '%s\n' "${order[@]}" >"$root/etc/modules"

install -m 755 "$here/init" "$root/init"
install -m 755 "$here/power-button" "$root/etc/acpi/PWRF/00000080"
(cd "$root" && find . | cpio -o -H newc --quiet --owner=0:0) | gzip -9 >initramfs.gz

install -m 644 kernel/boot/vmlinuz-* "$out/vmlinuz.new"
install -m 644 initramfs.gz "$out/initramfs.gz.new"
mv "$out/vmlinuz.new" "$out/vmlinuz"
mv "$out/initramfs.gz.new" "$out/initramfs.gz"
echo "$stamp" >"$out/stamp"
echo "guest: built $out from $package"
