#!/bin/bash
# faced on a Jetson (JetPack 6 / L4T r36, Ubuntu 22.04 arm64), installed in place.
# Owner: the appliance (issue 8). The same recipe as the images (image-build/recipe/install.sh,
# with --root /); only the Jetson's differences live here:
#   - no kiosk packages by default (FACED_KIOSK=1 to add cage + chromium);
#   - no FAT boot partition: first boot keeps the generated API key in /etc/faced/api-key
#     and this script prints where to read it;
#   - the ONNX Runtime CUDA/TensorRT back end arrives with a later issue: until then faced
#     runs its LiteRT CPU back end; FACED_EXTRA_INDEX_URL (e.g. NVIDIA's Jetson AI Lab index
#     for onnxruntime-gpu) is passed to pip for when it does.
# usage: sudo image-build/jetson/install.sh [FACED_WHEEL]   (default: builds the wheel)
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
# shellcheck source=SCRIPTDIR/../recipe/lib.sh
. "$REPO/image-build/recipe/lib.sh"

[ "$(id -u)" -eq 0 ] || die "run as root: sudo $0"
if [ -r /etc/nv_tegra_release ]; then
    log "L4T: $(head -n 1 /etc/nv_tegra_release)"
else
    log "WARNING: /etc/nv_tegra_release missing: this does not look like a Jetson (continuing)"
fi
python3 -c 'import sys; sys.exit(sys.version_info < (3, 10))' \
    || die "python3 >= 3.10 required (JetPack 6 has 3.10)"

wheel=${1:-}
if [ -z "$wheel" ]; then
    dist=$(mktemp -d)
    trap 'rm -rf "$dist"' EXIT
    python3 -m pip wheel --quiet --no-deps -w "$dist" "$REPO"
    wheels=("$dist"/faced-*.whl)
    wheel=${wheels[0]}
fi

FACED_KIOSK=${FACED_KIOSK:-0} "$REPO/image-build/recipe/install.sh" --root / --wheel "$wheel"

# Jetsons have no boot partition the owner edits: first boot runs now, the key stays here.
systemctl daemon-reload
systemctl restart faced-firstboot.service
systemctl restart faced.service
log "faced is running: systemctl status faced; the API key: sudo cat /etc/faced/api-key"
