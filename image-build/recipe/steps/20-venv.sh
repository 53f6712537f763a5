# Step 20: faced in its own venv at /opt/faced/venv, from the project's wheel. The venv sees
# the system site packages, so the OS's python3-systemd, python3-libcamera and
# python3-picamera2 (which pip cannot provide) are importable; everything else comes from
# pinned wheels (offline from --wheelhouse when given).
# shellcheck shell=bash

staging=/tmp/faced-install
rm -rf "$ROOT$staging"
mkdir -p "$ROOT$staging/wheels"
cp "$WHEEL" "$ROOT$staging/"
pip_source=()
if [ -n "$WHEELHOUSE" ]; then
    cp "$WHEELHOUSE"/*.whl "$ROOT$staging/wheels/"
    pip_source=(--no-index --find-links "$staging/wheels")
elif [ -n "${FACED_EXTRA_INDEX_URL:-}" ]; then
    pip_source=(--extra-index-url "$FACED_EXTRA_INDEX_URL")
fi
if [ ! -x "$ROOT$FACED_PREFIX/venv/bin/python" ]; then
    # FACED_PYTHON: the interpreter faced needs (>= 3.11) when the OS's python3 is older
    # (JetPack 6 / Ubuntu 22.04 has 3.10; image-build/jetson/install.sh sets python3.11).
    in_root "${FACED_PYTHON:-python3}" -m venv --system-site-packages "$FACED_PREFIX/venv"
fi
# The mdns extra: faced announces itself on the LAN (python-zeroconf; a --wheelhouse must
# hold zeroconf's and ifaddr's wheels).
in_root "$FACED_PREFIX/venv/bin/pip" install --quiet --disable-pip-version-check \
    "${pip_source[@]}" --upgrade "$staging/$(basename "$WHEEL")[mdns]"
in_root "$FACED_PREFIX/venv/bin/faced" --help >/dev/null
# Where the wheel has the C extension (the JPEG band decoder) it must load here, with the
# libjpeg it links, or faced would quietly decode whole frames.
if in_root "$FACED_PREFIX/venv/bin/python" -c \
    "import importlib.util as u, sys; sys.exit(u.find_spec('faced.vision._jpeg_band') is None)"; then
    in_root "$FACED_PREFIX/venv/bin/python" -c "import faced.vision._jpeg_band" \
        || die "faced's C extension (faced.vision._jpeg_band) does not load in the target"
    log "faced's C extension loads (JPEG band decoding)"
fi
# The OS's modules must be importable from the venv (system site packages) when the venv's
# interpreter is the OS's python3 (not on JetPack 6, where faced runs on python3.11).
for module in systemd.journal:python3-systemd pyaudio:python3-pyaudio picamera2:python3-picamera2; do
    if [ "${FACED_PYTHON:-python3}" = python3 ] && is_installed "${module#*:}"; then
        in_root "$FACED_PREFIX/venv/bin/python" -c "import ${module%%:*}" \
            || die "${module%%:*} (${module#*:}) is installed but faced's venv cannot import it"
    fi
done
# The image is read-only to the service (ProtectSystem=strict): compile now, not at start.
in_root "$FACED_PREFIX/venv/bin/python" -m compileall -q "$FACED_PREFIX/venv" >/dev/null || true
install -D -m 0644 "$REPO_DIR/image-build/README.md" "$ROOT$FACED_PREFIX/README.md"
