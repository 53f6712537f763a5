#!/bin/sh
# The kiosk's browser, started by sway (kiosk/sway.conf): chromium full screen on faced's
# local viewer, audio off (faced plays it). When chromium ends (a crash, or killed), sway is
# told to exit as well, so faced-kiosk.service (Restart=always) brings both back.
# Installed as /usr/lib/faced/kiosk/browser by recipe step 40.
chromium --kiosk --noerrdialogs --disable-infobars --no-first-run --ozone-platform=wayland \
    --disable-features=Translate --autoplay-policy=no-user-gesture-required \
    --check-for-update-interval=31536000 'http://127.0.0.1:9999/?audio=off'
echo "faced-kiosk: chromium exited (status $?): ending the session" >&2
exec swaymsg exit
