#!/usr/bin/env bash
# Regenerate tests/golden/*.npz from the reference implementations (see scripts/make_golden_fixtures.py).
#
#   scripts/make_golden_fixtures.sh                      # every fixture
#   scripts/make_golden_fixtures.sh corruptions          # only one (corruptions, corruptions_large, attacks)
#
# corruptions_large (224 px and a non-square 96×160, scripts/make_golden_corruptions_large.py) runs in the
# same reference environment. The corruption fixtures need PyPI imagecorruptions 1.1.2, which does not install beside the
# project (numpy < 2 …): it runs in its own virtual environment, created on first use at
# $RFTBENCH_REFENV (default ~/.cache/rftbench/refenv-imagecorruptions) with python3.11.
# The attack fixture runs in the project's environment ($PYTHON, default .venv/bin/python).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
refenv="${RFTBENCH_REFENV:-$HOME/.cache/rftbench/refenv-imagecorruptions}"
python="${PYTHON:-$root/.venv/bin/python}"
parts=("$@")
[[ ${#parts[@]} -eq 0 ]] && parts=(corruptions corruptions_large attacks)

if [[ " ${parts[*]} " == *" corruptions "* || " ${parts[*]} " == *" corruptions_large "* ]]; then
    if [[ ! -x "$refenv/bin/python" ]] || ! "$refenv/bin/python" -c "import imagecorruptions" 2>/dev/null; then
        echo "creating the reference environment in $refenv" >&2
        "${REFPYTHON:-python3.11}" -m venv "$refenv"
        "$refenv/bin/python" -m pip install --quiet "numpy==1.26.4" "scipy==1.11.4" "scikit-image==0.20.0" \
            "opencv-python-headless==4.11.0.86" "pillow<12" "setuptools<81"
        # --no-deps: its metadata asks for opencv-python and an unpinned numpy, which would pull numpy 2
        "$refenv/bin/python" -m pip install --quiet --no-deps "imagecorruptions==1.1.2"
    fi
fi
if [[ " ${parts[*]} " == *" corruptions "* ]]; then
    "$refenv/bin/python" "$root/scripts/make_golden_fixtures.py" corruptions
fi
if [[ " ${parts[*]} " == *" corruptions_large "* ]]; then
    OMP_NUM_THREADS=1 "$refenv/bin/python" "$root/scripts/make_golden_corruptions_large.py"
fi
if [[ " ${parts[*]} " == *" attacks "* ]]; then
    OMP_NUM_THREADS=1 "$python" "$root/scripts/make_golden_fixtures.py" attacks
fi
