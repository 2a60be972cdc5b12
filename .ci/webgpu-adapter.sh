#!/usr/bin/env bash
# A software WebGPU adapter for the tests: Mesa's lavapipe (Vulkan on the CPU), which Dawn (inside
# onnxruntime-node's WebGPU provider) accepts from Mesa 24 on. Debian 12 ships Mesa 22.3, which Dawn
# refuses ("Vulkan shaderUniform*ArrayDynamicIndexing required"), so on bookworm it comes from
# bookworm-backports. Idempotent: does nothing when lavapipe from Mesa >= 24 is already installed.
# It is for testing the GPU code path, not for speed (README "GPU providers").
set -euo pipefail

min_major=24
icd=/usr/share/vulkan/icd.d/lvp_icd.json

mesa_major() { dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null | sed -E 's/^([0-9]+:)?([0-9]+).*/\2/'; }
usable() {
  local major
  major=$(mesa_major)
  [ -f "$icd" ] && [ -n "$major" ] && [ "$major" -ge "$min_major" ] && dpkg-query -W -f='${Status}' libvulkan1 2>/dev/null | grep -q 'ok installed'
}

if ! command -v dpkg-query >/dev/null || ! command -v apt-get >/dev/null; then
  echo "webgpu-adapter: not a Debian-like system; install Mesa >= $min_major's Vulkan drivers (lavapipe) and the Vulkan loader with this system's package manager" >&2
  exit 1
fi
if usable; then
  echo "webgpu-adapter: lavapipe from mesa-vulkan-drivers $(dpkg-query -W -f='${Version}' mesa-vulkan-drivers) is installed"
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "webgpu-adapter: needs root to install mesa-vulkan-drivers (Mesa >= $min_major) and libvulkan1" >&2
  exit 1
fi

export DEBIAN_FRONTEND=noninteractive
codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
target=()
if [ "$codename" = bookworm ]; then
  if ! grep -rqs 'bookworm-backports' /etc/apt/sources.list /etc/apt/sources.list.d/; then
    echo 'deb http://deb.debian.org/debian bookworm-backports main' > /etc/apt/sources.list.d/webgpu-adapter-backports.list
  fi
  target=(-t bookworm-backports)
fi
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${target[@]}" mesa-vulkan-drivers libvulkan1 >/dev/null
if ! usable; then
  echo "webgpu-adapter: installed mesa-vulkan-drivers $(dpkg-query -W -f='${Version}' mesa-vulkan-drivers), older than Mesa $min_major, which Dawn refuses" >&2
  exit 1
fi
echo "webgpu-adapter: installed lavapipe from mesa-vulkan-drivers $(dpkg-query -W -f='${Version}' mesa-vulkan-drivers)"
