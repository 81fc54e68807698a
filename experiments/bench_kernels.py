"""Image-liveness kernels vs skimage/SciPy/OpenCV: thin wrapper of ``palmjax bench kernels``.

Usage: ``python experiments/bench_kernels.py [--size 256] [--points 400] [--quick]
[--json PATH]`` - prints a markdown table (device and library versions in the header).
"""

from __future__ import annotations

import sys

from palmjax.cli import main

if __name__ == "__main__":
  sys.exit(main(["bench", "kernels", *sys.argv[1:]]))
