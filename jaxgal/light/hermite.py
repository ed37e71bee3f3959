"""Cubic Hermite interpolation, shared by the tabulated special functions."""


def cubic_hermite(t, value_0, value_1, slope_0, slope_1):
    """The cubic through (0, value_0) and (1, value_1) with these slopes, at t in [0, 1].

    Slopes are derivatives with respect to t (scale them by the node spacing).
    """
    t2, t3 = t * t, t * t * t
    return (
        (2 * t3 - 3 * t2 + 1) * value_0
        + (t3 - 2 * t2 + t) * slope_0
        + (-2 * t3 + 3 * t2) * value_1
        + (t3 - t2) * slope_1
    )
