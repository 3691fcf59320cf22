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

# artifact_path BOARD FLAVOUR: where boards/build leaves the binary for a board. FLAVOUR may
# carry extra cargo features as "+feature" suffixes (runtime-free+tls).
artifact_path() {
  printf '%s\n' "$TARGET_DIR/boards/$1/$2/echo-server"
}

# --- zig builds: boards with BUILD=zigbuild ---
# Targets whose standard library rustup cannot install (arm-unknown-linux-musleabihf for
# ARMv6, armv7-unknown-linux-musleabihf) are built with std compiled from source
# (-Z build-std, so a nightly with rust-src) and linked by zig, which ships musl's start files
# and libc for every ARM core. The nightly is pinned so a board binary does not change with
# each day's nightly; zig and cargo-zigbuild come from PyPI into a venv under target/.
ZIG_NIGHTLY=nightly-2026-05-20
ZIG_PINS=(ziglang==0.17.1 cargo-zigbuild==0.24.1)
ZIG_VENV=$TARGET_DIR/boards/zig-venv

# ensure_zig_tools: installs the pinned nightly (+ rust-src) and the zig venv if missing;
# fails with the reason (and the log) if it cannot.
ensure_zig_tools() {
  local log=$TARGET_DIR/boards/zig-tools.log
  mkdir -p "$TARGET_DIR/boards"
  if ! rustup run "$ZIG_NIGHTLY" rustc --version >/dev/null 2>&1 ||
     ! [ -d "$(rustup run "$ZIG_NIGHTLY" rustc --print sysroot)/lib/rustlib/src/rust/library" ]; then
    echo "installing $ZIG_NIGHTLY with rust-src (for -Z build-std)..." >&2
    rustup toolchain install "$ZIG_NIGHTLY" --profile minimal --component rust-src >"$log" 2>&1 ||
      { echo "cannot install $ZIG_NIGHTLY with rust-src (see $log)" >&2; return 1; }
  fi
  local want have
  want=$(printf '%s\n' "${ZIG_PINS[@]}" | sort)
  have=$("$ZIG_VENV/bin/python" -m pip freeze --disable-pip-version-check 2>/dev/null |
         grep -iE '^(ziglang|cargo-zigbuild)==' | tr '[:upper:]' '[:lower:]' | sort)
  if [ "$have" != "$want" ]; then
    echo "installing ${ZIG_PINS[*]} into $ZIG_VENV..." >&2
    { rm -rf "$ZIG_VENV" && python3 -m venv "$ZIG_VENV" &&
      "$ZIG_VENV/bin/python" -m pip install -q --disable-pip-version-check "${ZIG_PINS[@]}"; } >>"$log" 2>&1 ||
      { echo "cannot install ${ZIG_PINS[*]} from PyPI (see $log)" >&2; return 1; }
  fi
}

# qemu_cmd TARGET: the qemu-user command line prefix that runs TARGET's binaries.
qemu_cmd() {
  case $1 in
    aarch64-unknown-linux-gnu) echo "qemu-aarch64 -L /usr/aarch64-linux-gnu" ;;
    aarch64-unknown-linux-musl) echo "qemu-aarch64" ;;
    armv7-unknown-linux-gnueabihf) echo "qemu-arm -L /usr/arm-linux-gnueabihf" ;;
    arm-unknown-linux-gnueabihf) echo "qemu-arm -L /usr/arm-linux-gnueabihf" ;;
    arm-unknown-linux-musleabihf|armv7-unknown-linux-musleabihf) echo "qemu-arm" ;;
    x86_64-unknown-linux-musl) echo "" ;;
    x86_64-unknown-linux-gnu) echo "" ;;
    *) echo "no qemu mapping for $1" >&2; return 1 ;;
  esac
}

# --- podman (boards/image, boards/image-test) ---
# podman_setup: checks for rootful podman + runc and points CONTAINERS_CONF at the project's
# own containers.conf under target/: runc (Debian's default crun cannot set up a container on
# some root-only machines and sandboxes) and explicit default_ulimits (podman would copy the
# caller's limits, and runc then fails with "error setting rlimit type 7: operation not
# permitted"). Must run in the calling shell, not in $(...), for the export to count. Fails
# with the reason in PODMAN_WHY if podman cannot be used.
PODMAN_WHY=
# shellcheck disable=SC2034 # PODMAN_WHY is read by the scripts that source this file
podman_setup() {
  local m=()
  command -v podman >/dev/null || m+=("podman")
  command -v runc >/dev/null || m+=("runc")
  if [ ${#m[@]} -gt 0 ]; then PODMAN_WHY="apt-get install ${m[*]}"; return 1; fi
  [ "$(id -u)" = 0 ] || { PODMAN_WHY="run as root (rootful podman; rootless needs a user namespace set-up)"; return 1; }
  local dir=$TARGET_DIR/boards/podman
  mkdir -p "$dir"
  cat > "$dir/containers.conf" <<'CONF'
# Written by boards/lib.sh (podman_setup); used through CONTAINERS_CONF by boards/image*.
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
[engine]
runtime = "runc"
CONF
  export CONTAINERS_CONF=$dir/containers.conf
  podman info >/dev/null 2>"$dir/info.err" || { PODMAN_WHY="podman info failed: $(head -3 "$dir/info.err")"; return 1; }
}

# image_board ARCH: the board file whose static binary the ARCH container image carries.
image_board() {
  case $1 in
    amd64) echo x86_64-musl ;;
    arm64) echo aarch64-musl ;;
    arm/v7) echo armv7-musl ;;
    arm/v6) echo pi-zero ;;
    *) echo "unknown image architecture '$1' (amd64, arm64, arm/v7, arm/v6)" >&2; return 1 ;;
  esac
}

# crate_version: the version in Cargo.toml.
crate_version() {
  sed -n 's/^version = "\(.*\)"/\1/p' "$ROOT/Cargo.toml" | head -1
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
  local arm_arch got_arch
  arm_arch=$(board_get "$file" ARM_ARCH)
  if [ -n "$arm_arch" ]; then
    # The CPU architecture the compiler and linker recorded (readelf -A): an ARMv7 object
    # or start file linked into an ARMv6 binary would raise it to v7.
    got_arch=$(readelf -A "$bin" 2>/dev/null | sed -n 's/^ *Tag_CPU_arch: *//p' | head -1)
    if [ "$got_arch" = "$arm_arch" ]; then
      pass "$what: readelf -A says Tag_CPU_arch: $got_arch ($(readelf -A "$bin" | sed -n 's/^ *Tag_THUMB_ISA_use: *//p' | head -1))"
    else
      fail "$what: readelf -A says Tag_CPU_arch: ${got_arch:-none} but $board.board says ARM_ARCH=$arm_arch"
    fi
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
