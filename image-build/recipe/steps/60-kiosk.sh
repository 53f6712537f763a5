# Step 60: the kiosk display. faced-kiosk.service (enabled in step 40 when FACED_KIOSK=1)
# starts sway + chromium on tty1 when a display (/dev/dri/card*) exists; boot to the
# graphical target so it is pulled in, and keep chromium from nagging on a kiosk.
# shellcheck shell=bash

if [ "$FACED_KIOSK" != 1 ]; then
    log "kiosk skipped (FACED_KIOSK=$FACED_KIOSK): faced-kiosk.service installed, not enabled"
    return 0
fi
in_root systemctl set-default graphical.target
mkdir -p "$ROOT/etc/chromium/policies/managed"
cat > "$ROOT/etc/chromium/policies/managed/faced-kiosk.json" <<'JSON'
{
  "TranslateEnabled": false,
  "PasswordManagerEnabled": false,
  "BrowserSignin": 0,
  "MetricsReportingEnabled": false,
  "DefaultBrowserSettingEnabled": false,
  "URLAllowlist": ["http://127.0.0.1:9999/*"],
  "URLBlocklist": ["*"]
}
JSON
