"""Build-time only: faced's one optional C extension; everything else is in pyproject.toml.

faced.vision._jpeg_band decodes only the band of a JPEG a tracked frame reads
(faced/vision/_jpeg_band.c says why). It needs a C compiler, Python's headers and
libjpeg-turbo's (Debian: gcc, python3-dev, libjpeg62-turbo-dev; `make test` installs them).
Where they are missing the build goes on without it and faced decodes whole frames, as
before. FACED_PURE_PYTHON=1 leaves it out on purpose, for a wheel built on one machine for
another (image-build/build-image.sh resolves the image's dependencies from such a wheel and
compiles the image's own in an arm64 build root).
"""

import os

from setuptools import Extension, setup

extensions = []
if os.environ.get("FACED_PURE_PYTHON", "") in ("", "0"):
    extensions.append(
        Extension(
            "faced.vision._jpeg_band",
            sources=["faced/vision/_jpeg_band.c"],
            libraries=["jpeg"],
            extra_compile_args=["-O2", "-Wall", "-Wextra", "-Werror=implicit-function-declaration"],
            optional=True,
        )
    )

setup(ext_modules=extensions)
