# Shared helpers for the scripts in boards/ (sourced, not run).
# Board files are plain KEY=value lines; they are parsed here, never executed.

BOARDS_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$BOARDS_DIR/.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}

# board_file NAME_OR_PATH: prints the board file's path, or fails with the list of boards.
board_file() {
  local b=$1
  if [ -f "$b" ]; then printf '%s\n' "$b"; return 0; fi
  if [ -f "$BOARDS_DIR/$b.board" ]; then printf '%s\n' "$BOARDS_DIR/$b.board"; return 0; fi
  echo "unknown board '$b'; known boards: $(board_names | tr '\n' ' ')" >&2
  return 1
}

# board_names: every board file's name, one a line.
board_names() {
  local f
  for f in "$BOARDS_DIR"/*.board; do basename "$f" .board; done
}

# board_get FILE KEY: prints KEY's value (empty if absent or empty).
board_get() {
  local line
  line=$(grep -m1 "^$2=" "$1" || true)
  printf '%s\n' "${line#*=}"
}

# flavour_features FLAVOUR: the cargo feature list for a server flavour.
flavour_features() {
  case $1 in
    tokio) echo tokio-server ;;
    runtime-free) echo runtime-free ;;
    *) echo "unknown flavour '$1' (tokio or runtime-free)" >&2; return 1 ;;
  esac
}

# artifact_path BOARD FLAVOUR: where boards/build leaves the binary for a board.
artifact_path() {
  printf '%s\n' "$TARGET_DIR/boards/$1/$2/echo-server"
}

# qemu_cmd TARGET: the qemu-user command line prefix that runs TARGET's binaries.
qemu_cmd() {
  case $1 in
    aarch64-unknown-linux-gnu) echo "qemu-aarch64 -L /usr/aarch64-linux-gnu" ;;
    aarch64-unknown-linux-musl) echo "qemu-aarch64" ;;
    armv7-unknown-linux-gnueabihf) echo "qemu-arm -L /usr/arm-linux-gnueabihf" ;;
    arm-unknown-linux-gnueabihf) echo "qemu-arm -L /usr/arm-linux-gnueabihf" ;;
    x86_64-unknown-linux-gnu) echo "" ;;
    *) echo "no qemu mapping for $1" >&2; return 1 ;;
  esac
}

# human_size BYTES: "123456 B (120.6 KB)" with KB = 1024 bytes.
human_size() {
  awk -v b="$1" 'BEGIN { printf "%d B (%.1f KB)", b, b / 1024 }'
}

# --- result reporting shared by boards/check and boards/qemu-test ---
FAILURES=0
pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; FAILURES=$((FAILURES + 1)); }
# A skip is also recorded for scripts/test (which counts it and fails it under CI).
skip() {
  echo "SKIP: $*"
  if [ -n "${LEAN_GRPC_SKIP_LOG:-}" ]; then echo "$*" >>"$LEAN_GRPC_SKIP_LOG"; fi
}

# glibc_needed BINARY: the highest GLIBC_x.y symbol version BINARY references ("none" if
# it references none, e.g. a static musl binary).
glibc_needed() {
  local v
  v=$(objdump -T "$1" 2>/dev/null | grep -o 'GLIBC_[0-9][0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -1)
  printf '%s\n' "${v:-none}"
}

# version_le A B: true when version A <= version B.
version_le() {
  [ "$(printf '%s\n%s\n' "$1" "$2" | sort -V | head -1)" = "$1" ]
}

# check_artifact BOARD FLAVOUR: static checks of a built board binary: architecture,
# hardening (PIE or static, GNU_RELRO, BIND_NOW), segment alignment, the glibc it needs
# versus the board file's MIN_GLIBC, and no instructions the board's CPU lacks.
check_artifact() {
  local board=$1 flavour=$2 file bin target what need declared hdr dyn
  file=$(board_file "$board") || return 1
  bin=$(artifact_path "$board" "$flavour")
  target=$(board_get "$file" TARGET)
  what="$board/$flavour"
  [ -f "$bin" ] || { fail "$what: no artifact at $bin"; return 0; }
  hdr=$(readelf -hlW "$bin")
  dyn=$(readelf -dW "$bin" 2>/dev/null || true)
  case $target in
    aarch64-*) grep -q 'Machine: *AArch64' <<<"$hdr" || fail "$what: not an AArch64 ELF" ;;
    arm*) grep -q 'Machine: *ARM$' <<<"$hdr" || fail "$what: not a 32-bit ARM ELF" ;;
  esac
  if grep -q GNU_RELRO <<<"$hdr"; then pass "$what: GNU_RELRO present"; else fail "$what: no GNU_RELRO segment"; fi
  case $target in
    *-gnu|*-gnueabihf)
      if grep -q 'Type: *DYN' <<<"$hdr" && grep -q 'FLAGS_1.*PIE' <<<"$dyn" && grep -q 'BIND_NOW' <<<"$dyn"; then
        pass "$what: PIE with BIND_NOW (full RELRO)"
      else
        fail "$what: expected a PIE with BIND_NOW"
      fi ;;
  esac
  case $target in
    aarch64-*)
      # Pi 5 kernels use 16K pages: every LOAD segment must be aligned to at least 16K.
      local align ok=no
      # shellcheck disable=SC2013 # one alignment value per word
      for align in $(awk '$1 == "LOAD" { print $NF }' <<<"$hdr"); do
        if [ $((align)) -lt 16384 ]; then ok=bad; break; fi
        ok=yes
      done
      if [ "$ok" = yes ]; then
        pass "$what: LOAD segments aligned for 16K-page kernels"
      else
        fail "$what: a LOAD segment is aligned below 16K (would not run on a Pi 5 16K-page kernel)"
      fi ;;
  esac
  need=$(glibc_needed "$bin")
  declared=$(board_get "$file" MIN_GLIBC)
  if [ "$need" = none ]; then
    if [ "$declared" = none ]; then pass "$what: needs no glibc (static)"; else fail "$what: needs no glibc but $board.board says MIN_GLIBC=$declared"; fi
  elif [ "$declared" = none ] || ! version_le "$need" "$declared"; then
    fail "$what: needs glibc $need (objdump -T) but $board.board says MIN_GLIBC=$declared"
  else
    pass "$what: needs glibc $need (objdump -T), board file says $declared"
  fi
  local abi want_kernel
  abi=$(readelf -n "$bin" 2>/dev/null | sed -n 's/.*OS: Linux, ABI: \([0-9.]*\).*/\1/p' | head -1)
  want_kernel=$(board_get "$file" MIN_KERNEL)
  if [ "${abi:-none}" = "$want_kernel" ] ||
     { [ -n "$abi" ] && [ "$want_kernel" != none ] && version_le "$abi" "$want_kernel"; }; then
    pass "$what: ELF ABI tag says kernel ${abi:-none} (readelf -n), board file says $want_kernel"
  else
    fail "$what: ELF ABI tag says kernel ${abi:-none} (readelf -n) but $board.board says MIN_KERNEL=$want_kernel"
  fi
  if [ "$(board_get "$file" TARGET_FEATURES)" = "-aes,-sha2" ]; then
    # Crypto Extension instructions would trap on BCM2711/BCM2837 (no AES/SHA/PMULL).
    local n
    if ! n=$(crypto_insns "$bin"); then
      fail "$what: cannot disassemble with aarch64-linux-gnu-objdump"
    elif [ "$n" -gt 0 ]; then
      fail "$what: contains $n ARMv8 Crypto Extension instructions the board's CPU lacks"
    else
      pass "$what: no ARMv8 Crypto Extension instructions (aarch64-linux-gnu-objdump -d)"
    fi
  fi
}

# crypto_insns AARCH64_ELF: prints how many ARMv8 Crypto Extension instructions (AES, SHA1,
# SHA256, 64-bit PMULL) the file contains; fails if it cannot be disassembled.
crypto_insns() {
  local dis
  dis=$(aarch64-linux-gnu-objdump -d "$1" 2>/dev/null) || return 1
  grep -q . <<<"$dis" || return 1
  # PMULL/PMULL2 on 8-bit lanes is plain NEON; only the 64-bit (.1q result) form is crypto.
  grep -cE $'\t(aes[ed]|aesi?mc|sha1[chmp]|sha1su[01]|sha256h2?|sha256su[01])\t|\tpmull2?\tv[0-9]+\\.1q' <<<"$dis" || true
}
