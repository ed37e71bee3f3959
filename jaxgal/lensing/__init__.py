"""Strong lensing: mass models (SIE, external shear) and their lensing quantities.

Each mass model is an `equinox.Module` with `deflection`, `potential`, `hessian`,
`convergence`, `shear` and `magnification` methods; the functions of the same names take
one model or a sequence of them and add them up.
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

# isort: on

__all__ = [
    "SIE",
    "ExternalShear",
    "MassModel",
    "convergence",
    "deflection",
    "hessian",
    "magnification",
    "potential",
    "shear",
]
