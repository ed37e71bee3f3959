"""Strong lensing: mass models (SIE, external shear) and their lensing quantities.

Each mass model is an `equinox.Module` with `deflection`, `potential`, `hessian`,
`convergence`, `shear` and `magnification` methods; the functions of the same names take
one model or a sequence of them and add them up. `image_positions` finds every image of a
point source (positions, magnifications, arrival times); `critical_curves` gives the critical
curve, the caustic and the cut.
"""

# isort: off
# The submodules first: importing `jaxgal.lensing.shear` (the module) binds the name `shear`
# here, and the function `shear` imported after it must be the one that stays.
from jaxgal.lensing.shear import ExternalShear
from jaxgal.lensing.sie import SIE
from jaxgal.lensing.mass import (
    MassModel,
    convergence,
    deflection,
    hessian,
    magnification,
    potential,
    shear,
)

from jaxgal.lensing.system import LensSystem
from jaxgal.lensing.point_source import LensedImages, image_positions
from jaxgal.lensing.caustics import CriticalCurves, critical_curves

# isort: on

__all__ = [
    "SIE",
    "CriticalCurves",
    "ExternalShear",
    "LensedImages",
    "LensSystem",
    "MassModel",
    "convergence",
    "critical_curves",
    "deflection",
    "hessian",
    "image_positions",
    "magnification",
    "potential",
    "shear",
]
