#!/bin/bash
# faced on a Jetson (JetPack 6 / L4T r36, Ubuntu 22.04 arm64), installed in place.
# The same recipe as the images (image-build/recipe/install.sh,
# with --root /); only the Jetson's differences live here:
#   - no kiosk packages by default (FACED_KIOSK=1 to add sway + chromium);
#   - no FAT boot partition: first boot keeps the generated API key in /etc/faced/api-key
#     and this script prints where to read it;
#   - the inference back end: LiteRT/XNNPACK on the CPU by default; FACED_BACKEND=onnxruntime
#     selects ONNX Runtime with CUDA/TensorRT: setup_backend below installs
#     NVIDIA's onnxruntime-gpu (FACED_ORT_WHEEL=a .whl file, or FACED_EXTRA_INDEX_URL=e.g. the
#     Jetson AI Lab index) into faced's venv and selects it in /etc/faced/faced.toml.
# usage: sudo image-build/jetson/install.sh [FACED_WHEEL]   (default: builds the wheel)
# environment: FACED_BACKEND=litert|onnxruntime, FACED_ORT_PROVIDER=auto|cuda|tensorrt,
#              FACED_ORT_WHEEL, FACED_EXTRA_INDEX_URL, FACED_KIOSK (default 0)
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
# faced needs Python >= 3.11; JetPack 6 (Ubuntu 22.04) has 3.10 as python3 and 3.11 as a
# package beside it. The OS's python3-systemd is then built for 3.10 and not importable by
# faced: it speaks the notify protocol itself and logs plain lines (journald still gets them).
if python3 -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
    export FACED_PYTHON=python3
else
    if ! command -v python3.11 >/dev/null; then
        apt-get update -qq
        apt-get install -y -qq --no-install-recommends python3.11 python3.11-venv
    fi
    export FACED_PYTHON=python3.11
fi
log "python: $("$FACED_PYTHON" --version)"

wheel=${1:-}
if [ -z "$wheel" ]; then
    dist=$(mktemp -d)
    trap 'rm -rf "$dist"' EXIT
    # In a throwaway venv of that interpreter: the OS's pip may belong to another python.
    "$FACED_PYTHON" -m venv "$dist/venv"
    "$dist/venv/bin/pip" wheel --quiet --no-deps -w "$dist" "$REPO"
    wheels=("$dist"/faced-*.whl)
    wheel=${wheels[0]}
fi

FACED_KIOSK=${FACED_KIOSK:-0} "$REPO/image-build/recipe/install.sh" --root / --wheel "$wheel"

# The hook for the GPU back end. faced's config already has vision.backend =
# "onnxruntime" and vision.onnx_provider; what a Jetson adds is NVIDIA's onnxruntime-gpu build
# (PyPI's onnxruntime has no CUDA for aarch64). The ONNX model files themselves are the back end's
# (`faced models build` / models/derived.toml); `faced models list` below reports them.
setup_backend() {
    local backend=${FACED_BACKEND:-litert} provider=${FACED_ORT_PROVIDER:-auto}
    local venv=/opt/faced/venv config=/etc/faced/faced.toml
    case $backend in
        litert) log "back end: LiteRT/XNNPACK on the CPU (FACED_BACKEND=onnxruntime for the GPU)"; return 0 ;;
        onnxruntime) ;;
        *) die "FACED_BACKEND=$backend: litert or onnxruntime" ;;
    esac
    if [ -n "${FACED_ORT_WHEEL:-}" ]; then
        "$venv/bin/pip" install --quiet --disable-pip-version-check "$FACED_ORT_WHEEL"
    elif [ -n "${FACED_EXTRA_INDEX_URL:-}" ]; then
        "$venv/bin/pip" install --quiet --disable-pip-version-check \
            --extra-index-url "$FACED_EXTRA_INDEX_URL" onnxruntime-gpu
    else
        die "FACED_BACKEND=onnxruntime needs NVIDIA's onnxruntime-gpu: set FACED_ORT_WHEEL or FACED_EXTRA_INDEX_URL"
    fi
    "$venv/bin/python" -c 'import onnxruntime, sys; print(onnxruntime.get_available_providers(), file=sys.stderr)'
    if [ -s "$config" ] && grep -q '^\[vision\]' "$config"; then
        log "NOTE: $config has a [vision] section: set backend = \"onnxruntime\" and onnx_provider = \"$provider\" there"
    else
        printf '\n[vision]\nbackend = "onnxruntime"\nonnx_provider = "%s"\n' "$provider" >> "$config"
        "$venv/bin/faced" config check "$config" || die "$config does not validate"
        log "back end: ONNX Runtime ($provider) selected in $config"
    fi
    # The GPU is /dev/nvmap, /dev/nvhost-* and /dev/nvgpu/*, none of them in faced.service's
    # DeviceAllow= classes; CUDA's driver may JIT PTX into write+exec memory. Loosened only
    # for this back end, in a drop-in (not yet tried on a device: check `systemctl status`).
    mkdir -p /etc/systemd/system/faced.service.d
    cat > /etc/systemd/system/faced.service.d/jetson-gpu.conf <<'EOF'
# Installed by faced's image-build/jetson/install.sh for FACED_BACKEND=onnxruntime.
[Service]
DevicePolicy=auto
MemoryDenyWriteExecute=no
EOF
    "$venv/bin/faced" models list >&2 || true
}
setup_backend

# Jetsons have no boot partition the owner edits: first boot runs now, the key stays here.
systemctl daemon-reload
systemctl restart faced-firstboot.service
systemctl restart faced.service
log "faced is running: systemctl status faced; the API key: sudo cat /etc/faced/api-key"
