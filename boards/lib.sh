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
