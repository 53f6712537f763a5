# Step 40: the systemd units, system users, tmpfiles, udev rule, PAM stack, the kiosk's sway
# config and browser, and the first-boot script; users and directories created now
# (sysusers/tmpfiles), units enabled.
# shellcheck shell=bash

units="$REPO_DIR/systemd"
for unit in faced.service faced-kiosk.service faced-firstboot.service; do
    install_file 0644 "$units/$unit" "/usr/lib/systemd/system/$unit"
done
install_file 0644 "$units/sysusers.d/faced.conf" /usr/lib/sysusers.d/faced.conf
install_file 0644 "$units/tmpfiles.d/faced.conf" /usr/lib/tmpfiles.d/faced.conf
install_file 0644 "$units/udev/90-faced-backlight.rules" /usr/lib/udev/rules.d/90-faced-backlight.rules
install_file 0644 "$units/pam.d/faced-kiosk" /etc/pam.d/faced-kiosk
install_file 0644 "$RECIPE_DIR/kiosk/sway.conf" /usr/lib/faced/kiosk/sway.conf
install_file 0755 "$RECIPE_DIR/kiosk/browser.sh" /usr/lib/faced/kiosk/browser
install_file 0755 "$RECIPE_DIR/firstboot.sh" /usr/lib/faced/firstboot
mkdir -p "$ROOT/boot/firmware"

in_root systemd-sysusers /usr/lib/sysusers.d/faced.conf
in_root systemd-tmpfiles --create /usr/lib/tmpfiles.d/faced.conf
# The key must never be baked into an image: first boot creates it on the device.
rm -f "$ROOT/etc/faced/api-key"
chown -R root:root "$ROOT$FACED_MODEL_DIR"

enable_unit faced.service faced-firstboot.service
if [ "$FACED_KIOSK" = 1 ]; then
    # The kiosk's runtime directory from boot on: faced (display.driver auto) looks for it.
    install_file 0644 "$units/tmpfiles.d/faced-kiosk.conf" /usr/lib/tmpfiles.d/faced-kiosk.conf
    enable_unit faced-kiosk.service
else
    rm -f "$ROOT/usr/lib/tmpfiles.d/faced-kiosk.conf"
fi
