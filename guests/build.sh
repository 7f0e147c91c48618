#!/usr/bin/env bash
# Build detvm's guest firmware into guests/bin/ with Debian's bare-metal RISC-V toolchain,
# installing it first if it is missing (needs root, as on the project's machines). The build is
# deterministic (no build-id, no timestamps, fixed flags), so the committed binaries can be
# checked by rebuilding: test/guests/guests.test.ts does that when the toolchain is present.
# Usage: guests/build.sh [outdir]     (default: guests/bin)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-$here/bin}"
CC=riscv64-unknown-elf-gcc

if ! command -v "$CC" >/dev/null 2>&1; then
  echo "build.sh: $CC not found; installing gcc-riscv64-unknown-elf" >&2
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y gcc-riscv64-unknown-elf binutils-riscv64-unknown-elf
fi

FLAGS=(
  -march=rv32ima_zicsr_zifencei -mabi=ilp32 -mcmodel=medany
  -nostdlib -static -ffreestanding -fno-builtin -fno-tree-loop-distribute-patterns
  -fno-pic -fno-asynchronous-unwind-tables -O2 -Wall -Wextra -Werror
  -T "$here/link.ld" -Wl,--build-id=none -Wl,--no-relax -Wl,--no-warn-rwx-segments
)
mkdir -p "$out"
# Objects get fixed names in a scratch directory: a temporary name would end up in the symbol
# table and make the ELF differ from build to build.
obj="$(mktemp -d)"
trap 'rm -rf "$obj"' EXIT
cd "$here/src"
for src in busyloop.S start.S demo.c mixed.c disk.c; do
  $CC "${FLAGS[@]}" -c -o "$obj/${src%.*}.o" "$src"
done
cd "$obj"
$CC "${FLAGS[@]}" -o "$out/busyloop.elf" busyloop.o
$CC "${FLAGS[@]}" -o "$out/demo.elf" start.o demo.o
$CC "${FLAGS[@]}" -o "$out/mixed.elf" start.o mixed.o
$CC "${FLAGS[@]}" -o "$out/disk.elf" start.o disk.o
"$CC" --version | head -n 1 > "$out/TOOLCHAIN"
echo "build.sh: built $(ls "$out"/*.elf | wc -l) guests in $out"
