#!/bin/bash
# The kiosk and faced's screen power end to end, under real systemd, on an x86 host.
# Manual, not part of make test or CI: about 5 minutes of one
# core, root, mmdebstrap, qemu-system-x86, e2fsprogs, and the host's access to Debian and PyPI.
#
# A Debian bookworm amd64 root filesystem gets the recipe, run natively (FACED_KIOSK=1:
# sway, chromium, the units, faced from this checkout's wheel, the models) and a kernel, and
# boots under qemu-system-x86_64 with a virtio-gpu display: a real DRM/KMS device, which
# sway's headless back end in tests/devices/test_display_wayland.py is not. Inside, faced.service
# and faced-kiosk.service run as installed; a check service waits for the kiosk's socket,
# switches the screen off and on through faced's API (PUT /api/display with the key first
# boot generated) and prints what the kernel (/sys/class/drm/*/dpms) and sway report on the
# serial console; this script reads that and fails unless both follow faced.
#
# Differences from the appliance, all VM-only: WLR_RENDERER=pixman for the kiosk (Mesa's
# kms_swrast crashes sway under TCG on virtio-gpu; a Pi renders with GLES), the check
# service, the root file system on /dev/vda without a boot partition.
#
# usage: sudo image-build/kiosk-vm-check.sh [WORKDIR]   (default /var/tmp/faced-kiosk-vm)
# environment: FACED_HOST_PYTHON (default: this checkout's .venv/bin/python) builds the wheel
#              and downloads the wheels; FACED_VM_TIMEOUT (default 900) bounds the boot, s.
set -euo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
WORK=${1:-/var/tmp/faced-kiosk-vm}
PYTHON=${FACED_HOST_PYTHON:-$REPO/.venv/bin/python}
ROOTFS=$WORK/rootfs
# shellcheck source=recipe/lib.sh
. "$HERE/recipe/lib.sh"

skip() {
    printf '# SKIPPED kiosk VM check: %s\n' "$*" >&2
    exit 77
}
[ "$(id -u)" -eq 0 ] || skip "not root (mmdebstrap, chroot, mounts)"
for tool in mmdebstrap qemu-system-x86_64 mkfs.ext4; do
    command -v "$tool" >/dev/null || skip "$tool missing (apt-get install mmdebstrap qemu-system-x86 e2fsprogs)"
done

unmount_under() {
    awk -v root="$1/" 'index($2, root) == 1 { print $2 }' /proc/mounts | sort -r \
        | while read -r target; do umount -l "$target"; done
}
trap 'unmount_under "$WORK"' EXIT INT TERM
unmount_under "$WORK"
rm -rf --one-file-system "$WORK"
mkdir -p "$WORK/dist" "$WORK/wheels"

log "faced's wheel and the amd64 cp311 wheels (downloaded on the host)"
"$PYTHON" -m pip wheel --quiet --no-deps --no-build-isolation -w "$WORK/dist" "$REPO"
wheels=("$WORK"/dist/faced-*.whl)
platforms=(--platform manylinux2014_x86_64)
for glibc_minor in 17 24 26 27 28 31 34 35 36; do
    platforms+=(--platform "manylinux_2_${glibc_minor}_x86_64")
done
"$PYTHON" -m pip download --quiet --disable-pip-version-check --only-binary=:all: \
    "${platforms[@]}" --python-version 3.11 --implementation cp --abi cp311 --abi abi3 \
    --abi none -d "$WORK/wheels" "${wheels[0]}"
rm -f "$WORK"/wheels/faced-*.whl
"$PYTHON" "$HERE/model_wheels.py" "$REPO/models/manifest.toml" "$WORK/wheels"

log "bookworm amd64 root file system with the recipe's and the kiosk's packages"
packages=$( (package_list "$HERE/recipe/packages.txt"; package_list "$HERE/recipe/kiosk-packages.txt") | paste -sd,)
mmdebstrap --variant=apt --include="systemd,systemd-sysv,dbus,udev,libpam-systemd,linux-image-amd64,curl,$packages" \
    bookworm "$ROOTFS" http://deb.debian.org/debian

mount -t proc proc "$ROOTFS/proc"
mount --bind /dev "$ROOTFS/dev"
FACED_KIOSK=1 "$HERE/recipe/install.sh" --root "$ROOTFS" --wheel "${wheels[0]}" \
    --wheelhouse "$WORK/wheels"
umount "$ROOTFS/dev" "$ROOTFS/proc"

log "VM-only bits: fstab, the kiosk's renderer, the check service"
echo "/dev/vda / ext4 rw 0 1" > "$ROOTFS/etc/fstab"
mkdir -p "$ROOTFS/etc/systemd/system/faced-kiosk.service.d"
printf '[Service]\nEnvironment=WLR_RENDERER=pixman\n' \
    > "$ROOTFS/etc/systemd/system/faced-kiosk.service.d/vm.conf"
cat > "$ROOTFS/usr/local/sbin/faced-vm-check" <<'CHECK'
#!/bin/sh
exec > /dev/ttyS0 2>&1
echo "VMCHECK begin"
i=0
while [ "$(stat -c %a /run/faced-kiosk/wayland-1 2>/dev/null)" != 660 ] && [ $i -lt 180 ]; do
    sleep 1; i=$((i + 1))
done
sleep 20  # faced's first attempt, before the kiosk was up, is retried after 15 s
ls -l /run/faced-kiosk
id faced
KEY=$(cat /etc/faced/api-key)
state() {
    for f in /sys/class/drm/card*-*/dpms; do
        d=${f%/dpms}
        [ "$(cat "$d/status")" = connected ] && printf ' %s=%s' "${d##*/}" "$(cat "$f")"
    done
    sock=$(ls /run/faced-kiosk/sway-ipc.*.sock)
    printf ' sway-dpms=%s\n' "$(SWAYSOCK=$sock swaymsg -t get_outputs | tr -d ' \n' | grep -o '"dpms":[a-z]*' | cut -d: -f2 | paste -sd,)"
}
echo "RESULT before$(state)"
for power in false true; do
    answer=$(curl -s -X PUT -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \
        -d "{\"power\": $power}" http://127.0.0.1:9999/api/display)
    echo "API $answer"
    sleep 1
    echo "RESULT $power$(state)"
done
sock=$(ls /run/faced-kiosk/sway-ipc.*.sock)
i=0
while [ $i -lt 120 ]; do  # chromium starts slowly under emulation
    windows=$(SWAYSOCK=$sock swaymsg -t get_tree | tr -d ' \n' | grep -o '"app_id":"[^"]*"' | paste -sd,)
    [ -n "$windows" ] && break
    sleep 1; i=$((i + 1))
done
echo "KIOSK $windows after $i s more"
journalctl -b -u faced --no-pager | grep -i display | tail -5
echo "VMCHECK end"
systemctl poweroff
CHECK
chmod 0755 "$ROOTFS/usr/local/sbin/faced-vm-check"
cat > "$ROOTFS/etc/systemd/system/faced-vm-check.service" <<'UNIT'
[Unit]
Description=faced kiosk VM check (image-build/kiosk-vm-check.sh)
After=faced.service faced-kiosk.service
[Service]
Type=oneshot
ExecStart=/usr/local/sbin/faced-vm-check
[Install]
WantedBy=graphical.target
UNIT
systemctl --root="$ROOTFS" enable faced-vm-check.service

cp "$ROOTFS"/boot/vmlinuz-* "$WORK/vmlinuz"
cp "$ROOTFS"/boot/initrd.img-* "$WORK/initrd.img"
mkfs.ext4 -q -F -L faced-root -d "$ROOTFS" "$WORK/root.img" 5G

log "booting under qemu (TCG, one core, virtio-gpu)"
started=$SECONDS
timeout "${FACED_VM_TIMEOUT:-900}" qemu-system-x86_64 -accel tcg -cpu max -m 3072 -smp 1 \
    -kernel "$WORK/vmlinuz" -initrd "$WORK/initrd.img" \
    -append "root=/dev/vda rw console=ttyS0" \
    -drive "file=$WORK/root.img,format=raw,if=virtio" -device virtio-gpu-pci \
    -vga none -display none -serial "file:$WORK/serial.log" -monitor none -nic none -no-reboot \
    || die "qemu failed or ran over ${FACED_VM_TIMEOUT:-900} s (serial log: $WORK/serial.log)"
log "VM ran $((SECONDS - started)) s"
sed -n '/VMCHECK begin/,/VMCHECK end/p' "$WORK/serial.log" | tr -d '\r' | grep -v '^\[' >&2

# The screen (Virtual-1) off, then on: the kernel's dpms and sway's own account must agree.
expect() {
    grep -a -q "^RESULT $1 card0-Virtual-1=$2 .*sway-dpms=$3" "$WORK/serial.log" \
        || die "after power=$1 the kernel/sway did not report card0-Virtual-1=$2, dpms $3"
}
expect before On true
expect false Off false
expect true On true
grep -a -q '^KIOSK .*"app_id":"chromium"' "$WORK/serial.log" \
    || die "chromium is not on the kiosk's screen"
log "OK: faced switched the kiosk's screen off and on (kernel dpms and sway agree); chromium shown"
