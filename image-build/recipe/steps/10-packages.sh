# Step 10: the OS packages faced relies on (recipe/packages.txt), the kiosk's
# (kiosk-packages.txt, unless FACED_KIOSK=0) and, where the archive has them, the camera
# stack (camera-packages.txt: Raspberry Pi OS has picamera2/libcamera, Debian does not).
# shellcheck shell=bash

wanted=$(package_list "$RECIPE_DIR/packages.txt")
if [ "$FACED_KIOSK" = 1 ]; then
    wanted="$wanted $(package_list "$RECIPE_DIR/kiosk-packages.txt")"
fi
missing=""
for package in $wanted; do
    is_installed "$package" || missing="$missing $package"
done
apt_updated=0
if [ -n "$missing" ]; then
    log "installing:$missing"
    in_root apt-get update -qq
    apt_updated=1
    # shellcheck disable=SC2086  # a list of package names
    in_root apt-get install -y -qq --no-install-recommends $missing
else
    log "packages already installed"
fi
for package in $(package_list "$RECIPE_DIR/camera-packages.txt"); do
    if is_installed "$package"; then
        continue
    fi
    if [ "$apt_updated" = 0 ]; then
        in_root apt-get update -qq
        apt_updated=1
    fi
    if in_root apt-cache show "$package" >/dev/null 2>&1; then
        in_root apt-get install -y -qq --no-install-recommends "$package"
    else
        log "NOTE: $package is not in this OS's archive (Raspberry Pi OS has it): camera source picamera2 unavailable"
    fi
done
