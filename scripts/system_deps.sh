#!/usr/bin/env bash
# Install the Debian libraries open3d needs: libusb-1.0-0 (import), libegl1, libvulkan1 and
# mesa-vulkan-drivers (headless rendering). Only as root with apt-get; otherwise print a hint.
set -euo pipefail
pkgs=(libusb-1.0-0 libegl1 libvulkan1 mesa-vulkan-drivers)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
  echo "installing Debian packages: ${missing[*]}"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
else
  echo "note: 3D rendering needs the system packages: ${missing[*]}" >&2
  echo "      (e.g. sudo apt-get install ${missing[*]}); everything else works without them." >&2
fi
