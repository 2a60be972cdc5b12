#!/usr/bin/env bash
# Runs a command on this x86 machine as if its CPU were of another class (issue 22's classes):
#   bash tools/cpu-class/run.sh avx2 npm test                  # AVX2 + FMA only (Zen 1-3, Haswell-Skylake client)
#   bash tools/cpu-class/run.sh avx512 npm run bench -- ...    # AVX-512 without VNNI (Skylake-SP)
#   bash tools/cpu-class/run.sh avx512vnni npm run bench -- ...  # AVX-512 with VNNI, no AMX (Cascade Lake-Ice Lake, Zen 4-5)
# It can only take features away. Needs gcc and CPUID faulting (Linux, flag cpuid_fault); see hide-features.c.
set -euo pipefail
class=${1:-}
shift || true
amx="amx_bf16 amx_tile amx_int8 avx512_fp16 avx_vnni_int8 avx_vnni_int16 avx_ne_convert avx_ifma"
vnni="avx512_vnni avx_vnni avx512_bf16 avx512ifma avx512vbmi avx512_vbmi2 avx512_bitalg avx512_vpopcntdq avx512_vp2intersect"
avx512="avx512f avx512dq avx512pf avx512er avx512cd avx512bw avx512vl avx512_4vnniw avx512_4fmaps"
case "$class" in
  avx2) hide="$avx512 $vnni $amx" ;;
  avx512) hide="$vnni $amx" ;;
  avx512vnni) hide="$amx" ;;
  *) echo "usage: run.sh avx2|avx512|avx512vnni <command...>" >&2; exit 2 ;;
esac
[ $# -gt 0 ] || { echo "usage: run.sh $class <command...>" >&2; exit 2; }
grep -qw cpuid_fault /proc/cpuinfo || { echo "run.sh: no CPUID faulting on this machine (flag cpuid_fault)" >&2; exit 1; }
here=$(cd "$(dirname "$0")" && pwd)
lib="${XDG_CACHE_HOME:-$HOME/.cache}/diffuse-tools/hide-features-$(sha256sum "$here/hide-features.c" | cut -c1-12).so"
if [ ! -f "$lib" ]; then
  mkdir -p "$(dirname "$lib")"
  gcc -O2 -shared -fPIC -Wall -Wextra -o "$lib.tmp" "$here/hide-features.c" -ldl
  mv "$lib.tmp" "$lib"
fi
export DIFFUSE_CPU_CLASS=$class DIFFUSE_CPU_HIDE="$hide" LD_PRELOAD="$lib${LD_PRELOAD:+:$LD_PRELOAD}"
exec "$@"
