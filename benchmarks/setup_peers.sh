#!/usr/bin/env bash
# Install the peer fitters that benchmarks/compare_methods.py runs against jaxgal:
#   Imfit through pyimfit (a C++ source build: needs g++ with OpenMP and Debian's FFTW3, GSL
#   and NLopt development packages; pyimfit ships a prebuilt libimfit.a, so SCons is not
#   needed), GalSim + scipy, and pysersic (JAX + numpyro).
#
#     bash benchmarks/setup_peers.sh            # into .venv (or PYTHON=/path/to/python)
#
# jax, jaxlib, numpyro, equinox, numpy and the rest of jaxgal's stack are held at the
# versions already installed (a pip constraints file), so the peers can never downgrade
# them. Takes 40 s on 2 cores with pyimfit's wheel in pip's cache (measured on a fresh venv
# holding jaxgal[test]; 2-3 minutes when pyimfit's extension must be compiled). Network: only
# Debian's mirrors (apt-get) and PyPI (pip install, and pip download of pyimfit's sdist).
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-.venv/bin/python}

if command -v apt-get >/dev/null; then
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO=sudo; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
        g++ libfftw3-dev libgsl-dev libnlopt-dev libnlopt-cxx-dev
fi

constraints=$(mktemp)
trap 'rm -f "$constraints"' EXIT
"$PYTHON" -m pip freeze 2>/dev/null \
    | grep -i -E '^(jax|jaxlib|numpyro|equinox|numpy|scipy|flax|optax|astropy|matplotlib)==' \
    >"$constraints" || true
echo "held at their installed versions:" $(cat "$constraints")

"$PYTHON" -m pip install -q -c "$constraints" "scipy>=1.11" "galsim>=2.5" "pyimfit>=1.1" \
    "pysersic>=0.1.5"

# Real SDSS r-band images for tests/test_peers_agree.py, from pyimfit's own source
# distribution on PyPI (its tests' data, not installed with the wheel; 10.7 MB, fetched once
# and kept out of git in out/, or $PEER_DATA_DIR): NGC 3073 (200 x 150, with a mask of its
# neighbours), IC 3478 and an unnormalised 35 x 35 Moffat PSF image.
DATA_DIR=${PEER_DATA_DIR:-out/peer_data}
if [ ! -f "$DATA_DIR/n3073rss_small.fits" ]; then
    download=$(mktemp -d)
    "$PYTHON" -m pip download -q --no-deps "pyimfit==1.1" -d "$download"
    mkdir -p "$DATA_DIR"
    tar -xzf "$download"/pyimfit-1.1.tar.gz -C "$download"
    cp "$download"/pyimfit-1.1/pyimfit/data/{n3073rss_small.fits,n3073rss_small_mask.fits} \
        "$download"/pyimfit-1.1/pyimfit/data/{ic3478rss_256.fits,psf_moffat_35.fits} \
        "$download"/pyimfit-1.1/pyimfit/data/config_n3073.dat "$DATA_DIR"/
    rm -rf "$download"
fi
echo "real images for tests/test_peers_agree.py in $DATA_DIR:" $(ls "$DATA_DIR")

"$PYTHON" - <<'EOF'
import galsim, jax, pyimfit, pysersic, scipy
print(f"jax {jax.__version__}, galsim {galsim.__version__}, scipy {scipy.__version__}, "
      f"pyimfit {pyimfit.__version__}, pysersic {getattr(pysersic, '__version__', '?')}")
EOF
