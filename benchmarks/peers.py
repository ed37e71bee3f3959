"""The Sersic fitters a user would pick instead of jaxgal, each with jaxgal's conventions.

Installed by `bash benchmarks/setup_peers.sh` (the `bench` extra), not by jaxgal itself:

- **Imfit** through `pyimfit` (C++ Levenberg-Marquardt, the GALFIT way): `imfit_fit`,
  `imfit_chi2`, `imfit_model_image`; with `effective_psf_oversampling` Imfit computes
  jaxgal's model of a pixelised (effective) PSF instead of its own, so that both codes
  minimise the same chi-square (`tests/test_peers_agree.py`).
- **GalSim + scipy**: GalSim draws the model, `scipy.optimize.least_squares` fits it:
  `galsim_scipy_fit`.
- **pysersic** (JAX + numpyro): NUTS on its own priors (`autoprior`): `pysersic_fit`.

Every fitter takes the same data: a sky-subtracted image in counts `(ny, nx)`, a sigma map
of the same shape, an odd pixelised PSF (an effective PSF that already holds the pixel, as
in CONVENTIONS.md), an optional `mask` (True where a pixel counts) and a starting point as
a dict in jaxgal's conventions, and returns a dict in the same conventions (`flux` in
counts, `r_eff` circularised in arcsec, `n`, `q`, `pa` in degrees counter-clockwise from +x,
`x0`, `y0` in arcsec from the stamp's centre) with `chi2`, `evaluations`, `seconds` and
`converged`. This module imports no JAX at the top, so `fit_in_pool` can run the classical
fitters in worker processes.

Imfit's Sersic (checked against images it renders, `tests/test_peers_agree.py`): `r_e` is
the semi-major axis in pixels, `ell = 1 - q`, `PA` is counter-clockwise from +y (so jaxgal's
`pa = PA + 90`), `I_e` is the surface brightness at `r_e` in counts per pixel, and
`(X0, Y0)` are 1-based pixel coordinates (the first pixel's centre is at 1.0).
"""

from __future__ import annotations

import multiprocessing
import time

import numpy as np
from scipy.special import gammaincinv, gammaln

NAMES = ("flux", "r_eff", "n", "q", "pa", "x0", "y0")


# ---------------------------------------------------------------- Imfit's parameters
def sersic_bn(n):
    """The exact b_n: the root of P(2n, b_n) = 1/2 (Imfit's series agrees to ~1e-6)."""
    return gammaincinv(2.0 * np.asarray(n, float), 0.5)


def imfit_total_flux(intensity_e, r_e, n, ell):
    """Total flux (counts) of Imfit's Sersic: `I_e` (counts/pixel), major-axis `r_e`
    (pixels), `n`, `ell`: 2 pi n I_e r_e^2 (1 - ell) e^b b^-2n Gamma(2n)."""
    b = sersic_bn(n)
    log_factor = np.log(2.0 * np.pi * n) + b - 2.0 * n * np.log(b) + gammaln(2.0 * n)
    return intensity_e * r_e**2 * (1.0 - ell) * np.exp(log_factor)


def to_imfit(galaxy: dict, shape, pixel_scale: float) -> dict:
    """jaxgal's parameters (dict of NAMES) -> Imfit's X0, Y0, PA, ell, n, I_e, r_e."""
    ny, nx = shape
    q, n = float(galaxy["q"]), float(galaxy["n"])
    r_e = float(galaxy["r_eff"]) / pixel_scale / np.sqrt(q)
    ell = 1.0 - q
    return dict(
        X0=float(galaxy["x0"]) / pixel_scale + (nx - 1) / 2.0 + 1.0,
        Y0=float(galaxy["y0"]) / pixel_scale + (ny - 1) / 2.0 + 1.0,
        PA=float(np.mod(float(galaxy["pa"]) - 90.0, 180.0)),
        ell=ell,
        n=n,
        I_e=float(galaxy["flux"]) / imfit_total_flux(1.0, r_e, n, ell),
        r_e=r_e,
    )


def from_imfit(values: dict, shape, pixel_scale: float) -> dict:
    """Imfit's X0, Y0, PA, ell, n, I_e, r_e -> jaxgal's parameters (dict of NAMES)."""
    ny, nx = shape
    q = 1.0 - values["ell"]
    return dict(
        flux=float(imfit_total_flux(values["I_e"], values["r_e"], values["n"], values["ell"])),
        r_eff=float(values["r_e"] * np.sqrt(q) * pixel_scale),
        n=float(values["n"]),
        q=float(q),
        pa=float(np.mod(values["PA"] + 90.0, 180.0)),
        x0=float((values["X0"] - 1.0 - (nx - 1) / 2.0) * pixel_scale),
        y0=float((values["Y0"] - 1.0 - (ny - 1) / 2.0) * pixel_scale),
    )


IMFIT_ORDER = ("X0", "Y0", "PA", "ell", "n", "I_e", "r_e")


def imfit_model(values: dict, *, free: bool = True):
    """A pyimfit model: one Sersic, no sky (the images are sky-subtracted), with limits
    wide enough never to bind on a real fit (n in [0.3, 8], q >= 0.05)."""
    import pyimfit

    model = pyimfit.SimpleModelDescription()
    x0, y0 = values["X0"], values["Y0"]
    model.x0.setValue(x0, [x0 - 8.0, x0 + 8.0] if free else "fixed")
    model.y0.setValue(y0, [y0 - 8.0, y0 + 8.0] if free else "fixed")
    sersic = pyimfit.make_imfit_function("Sersic")
    sersic.PA.setValue(values["PA"], [-720.0, 720.0])
    sersic.ell.setValue(min(values["ell"], 0.9), [0.0, 0.95])
    sersic.n.setValue(float(np.clip(values["n"], 0.35, 7.9)), [0.3, 8.0])
    sersic.I_e.setValue(values["I_e"], [0.0, 1e3 * values["I_e"] + 1e3])
    sersic.r_e.setValue(values["r_e"], [0.05, 2000.0])
    model.addFunction(sersic)
    return model


# ------------------------------------------- Imfit computing jaxgal's effective-PSF model
# Imfit treats a PSF image as the PSF itself: by default it integrates the model over
# each pixel near the centre (its subsampling) and convolves discretely with the image.
# jaxgal treats a pixelised PSF as an *effective* PSF (CONVENTIONS.md): the image is the
# surface brightness convolved with the Quintic-interpolated kernel, sampled at the pixel
# centres, with no second pixel. Far from a cusp the two agree to ~1e-2 sigma; on NGC
# 3073's n ~ 4.3 nucleus they differ by up to 2.7 sigma a pixel, enough to move n by 3
# sigma. Imfit computes jaxgal's model itself in an *oversampled region* around the
# nucleus: there it samples the profile on a lattice `factor` times finer, convolves it
# with an oversampled PSF and averages each main pixel's factor x factor block. With the
# oversampled PSF below that average is a Riemann sum, on the fine lattice, of the
# continuous convolution with the Quintic-interpolated kernel, i.e. jaxgal's pixel value.


def deconvolved_quintic(factor: int):
    """(offsets, weights): r on a lattice of 1 / `factor` pixel such that the average of
    `factor` consecutive values of r (Imfit's downsampling, one axis) is the Quintic
    interpolant (GalSim's, Bernstein & Gruen 2014) sampled on that lattice, times the
    lattice spacing. r exists and is short: the Quintic's transform vanishes (to third
    order) wherever the box average's does, at every non-zero multiple of 2 pi / pixel.
    Computed by FFT on a periodic lattice 64 pixels long; exact to rounding."""
    import galsim

    if factor < 1 or factor % 2 == 0:
        raise ValueError(f"the oversampling factor must be odd (a centred box), got {factor}")
    size = 64 * factor
    offsets = np.fft.fftfreq(size, 1.0 / size).astype(int)
    samples = galsim.Quintic().xval(offsets / factor) / factor
    box = np.zeros(size)
    box[np.arange(-(factor // 2), factor // 2 + 1)] = 1.0 / factor
    box_spectrum = np.fft.fft(box)
    zero = np.abs(box_spectrum) < 1e-9  # there the Quintic's spectrum is zero too
    spectrum = np.where(zero, 0.0, np.fft.fft(samples) / np.where(zero, 1.0, box_spectrum))
    weights = np.real(np.fft.ifft(spectrum))
    keep = np.abs(weights) > 1e-12 * np.abs(weights).max()
    reach = int(np.abs(offsets[keep]).max())
    inside = np.abs(offsets) <= reach
    order = np.argsort(offsets[inside])
    return offsets[inside][order], weights[inside][order]


def effective_psf_oversampled(psf_image, factor: int):
    """The oversampled PSF image with which Imfit's oversampled region computes jaxgal's
    effective-PSF model: sum_j K_j r(x - factor j) r(y - factor i) over the normalised
    kernel K, with `deconvolved_quintic`'s r. Odd sides, centred, sums to 1."""
    kernel = np.asarray(psf_image, float)
    kernel = kernel / kernel.sum()
    offsets, weights = deconvolved_quintic(factor)
    reach = int(offsets.max())
    table = np.zeros(2 * reach + 1)
    table[offsets + reach] = weights

    def spread(count):
        half = (count - 1) // 2
        fine = np.arange(-(half * factor + reach), half * factor + reach + 1)
        matrix = np.zeros((fine.size, count))
        for column in range(count):
            shifted = fine - (column - half) * factor + reach
            inside = (shifted >= 0) & (shifted < table.size)
            matrix[inside, column] = table[shifted[inside]]
        return matrix

    return spread(kernel.shape[0]) @ kernel @ spread(kernel.shape[1]).T


def _smooth_size(low: int, factor: int, psf_side: int) -> int:
    """The side in [low, low + 16) of the oversampled region whose padded FFT size in
    Imfit (factor * side + 3 * psf_side - 1) has the smallest largest prime factor."""

    def largest_prime(number):
        largest, divisor = 1, 2
        while divisor * divisor <= number:
            while number % divisor == 0:
                largest, number = divisor, number // divisor
            divisor += 1
        return max(largest, number)

    return min(
        range(low, low + 16), key=lambda side: largest_prime(factor * side + 3 * psf_side - 1)
    )


def _imfit_with_data(values, image, sigma, psf_image, bad, threads, oversample, region_side):
    """A pyimfit.Imfit for `values` with the data loaded; `oversample` (odd) computes
    jaxgal's effective-PSF model in a region of about `region_side` pixels around the
    centre (see `effective_psf_oversampled`), and turns Imfit's own subsampling off (the
    effective PSF already holds the pixel)."""
    import pyimfit

    fitter = pyimfit.Imfit(
        imfit_model(values),
        psf=np.asarray(psf_image, float),
        psfNormalization=True,
        maxThreads=threads,
        subsampling=oversample is None,
    )
    options = {}
    if oversample is not None:
        fine_psf = effective_psf_oversampled(psf_image, oversample)
        side = _smooth_size(region_side, oversample, fine_psf.shape[0])
        x1 = int(round(values["X0"])) - side // 2
        y1 = int(round(values["Y0"])) - side // 2
        region = (x1, x1 + side - 1, y1, y1 + side - 1)  # 1-based, inclusive
        options["psf_oversampling_list"] = [
            pyimfit.MakePsfOversampler(fine_psf, oversample, region)
        ]
    fitter.loadData(
        np.where(bad, 0.0, image),
        error=np.where(bad, 1.0, sigma),
        mask=bad.astype(float),
        error_type="sigma",
        mask_format="zero_is_good",
        **options,
    )
    return fitter


def _bad_pixels(image, sigma, mask):
    bad = ~np.isfinite(image) | ~np.isfinite(sigma) | (np.asarray(sigma) <= 0)
    if mask is not None:
        bad |= ~np.asarray(mask, bool)
    return bad


def imfit_fit(
    image,
    sigma,
    psf_image,
    start: dict,
    pixel_scale: float,
    mask=None,
    threads=1,
    *,
    effective_psf_oversampling: int | None = None,
    region_side: int = 21,
):
    """Fit one Sersic with Imfit (Levenberg-Marquardt, chi-square with `sigma`, the PSF
    normalised by Imfit), from `start`. By default Imfit's own model: its pixel
    subsampling near the centre and the PSF image taken as the PSF. With
    `effective_psf_oversampling` (an odd factor, 9 is enough for a Sersic n ~ 4 with a
    PSF a few pixels wide) Imfit computes jaxgal's model instead, the PSF image taken as an
    effective PSF (see `effective_psf_oversampled`), in a region of about `region_side`
    pixels around the start's centre (it must still hold the nucleus at the optimum)."""
    image = np.asarray(image, float)
    sigma = np.asarray(sigma, float)
    bad = _bad_pixels(image, sigma, mask)
    values = to_imfit(start, image.shape, pixel_scale)
    fitter = _imfit_with_data(
        values, image, sigma, psf_image, bad, threads, effective_psf_oversampling, region_side
    )
    clock = time.perf_counter()
    fitter.doFit(solver="LM")
    seconds = time.perf_counter() - clock
    raw = dict(zip(IMFIT_ORDER, fitter.getRawParameters()))
    # Imfit gives no errors (None) for a fit that failed: NaN, and the fit counts as failed
    reported = fitter.parameterErrors
    errors = dict(zip(IMFIT_ORDER, [np.nan] * len(IMFIT_ORDER) if reported is None else reported))
    result = from_imfit(raw, image.shape, pixel_scale)
    result.update(
        chi2=float(fitter.fitStatistic),
        evaluations=int(fitter.nFuncEvals),
        seconds=seconds,
        converged=bool(fitter.fitConverged) and reported is not None,
        imfit=raw,
        imfit_errors=errors,
    )
    return result


def imfit_chi2(
    image,
    sigma,
    psf_image,
    galaxies,
    pixel_scale: float,
    mask=None,
    threads=1,
    *,
    effective_psf_oversampling: int | None = None,
    region_side: int = 21,
):
    """Imfit's chi-square (no fit) of each jaxgal-convention galaxy in `galaxies` (a list
    of dicts) on this data, with the same model options as `imfit_fit`; the oversampled
    region is placed on the first galaxy's centre."""
    image = np.asarray(image, float)
    sigma = np.asarray(sigma, float)
    bad = _bad_pixels(image, sigma, mask)
    values = [to_imfit(galaxy, image.shape, pixel_scale) for galaxy in galaxies]
    fitter = _imfit_with_data(
        values[0], image, sigma, psf_image, bad, threads, effective_psf_oversampling, region_side
    )
    return [
        float(fitter.computeFitStatistic(np.array([v[k] for k in IMFIT_ORDER]))) for v in values
    ]


def imfit_model_image(
    shape,
    psf_image,
    galaxy: dict,
    pixel_scale: float,
    *,
    effective_psf_oversampling: int | None = None,
    region_side: int = 21,
):
    """Imfit's model image (counts per pixel) of the jaxgal-convention `galaxy` on a
    stamp of `shape`, with the same model options as `imfit_fit`."""
    values = to_imfit(galaxy, shape, pixel_scale)
    blank = np.zeros(shape)
    fitter = _imfit_with_data(
        values,
        blank,
        np.ones(shape),
        psf_image,
        np.zeros(shape, bool),
        1,
        effective_psf_oversampling,
        region_side,
    )
    return fitter.getModelImage(newParameters=np.array([values[k] for k in IMFIT_ORDER]))


# ---------------------------------------------------------------- GalSim + scipy
def galsim_scipy_fit(
    image,
    sigma,
    psf,
    start: dict,
    pixel_scale: float,
    mask=None,
    *,
    draw_method: str | None = None,
    max_evaluations: int = 200,
):
    """Fit one Sersic by `scipy.optimize.least_squares` (trust region, bounded) with each
    model drawn by GalSim. `psf`: a pixelised effective PSF (array; drawn as GalSim's
    `InterpolatedImage` with `method='no_pixel'`) or any GalSim profile (drawn with the
    pixel, `method='auto'`). Parameters: ln flux, ln r_eff, n (GalSim's 0.3-6.2), q, pa,
    x0, y0."""
    import galsim
    from scipy.optimize import least_squares

    image = np.asarray(image, float)
    ny, nx = image.shape
    if isinstance(psf, galsim.GSObject):
        psf_profile, method = psf, draw_method or "auto"
    else:
        kernel = np.asarray(psf, float)
        psf_profile = galsim.InterpolatedImage(
            galsim.Image(kernel / kernel.sum(), scale=pixel_scale), normalization="flux"
        )
        method = draw_method or "no_pixel"
    good = np.isfinite(image) & np.isfinite(sigma) & (np.asarray(sigma) > 0)
    if mask is not None:
        good &= np.asarray(mask, bool)
    data, weight = image[good], 1.0 / np.asarray(sigma)[good]
    gsparams = galsim.GSParams(maximum_fft_size=4096)  # bounds memory and time per model

    def residuals(p):
        log_flux, log_r, n, q, pa, x0, y0 = p
        galaxy = galsim.Sersic(n=n, half_light_radius=np.exp(log_r), flux=np.exp(log_flux))
        galaxy = galaxy.shear(q=q, beta=pa * galsim.degrees).shift(x0, y0)
        model = galsim.Convolve(galaxy, psf_profile, gsparams=gsparams)
        try:
            drawn = model.drawImage(nx=nx, ny=ny, scale=pixel_scale, method=method).array
        except galsim.GalSimFFTSizeError:  # a huge, cuspy trial step: push the solver back
            return 10.0 * np.abs(data) * weight + 1e3
        return (drawn[good] - data) * weight

    lower = np.array([np.log(1e-3), np.log(0.02), 0.35, 0.05, -90.0, -1.0, -1.0])
    stamp = pixel_scale * max(nx, ny)
    upper = np.array([np.log(1e9), np.log(stamp), 6.2, 1.0, 270.0, 1.0, 1.0])
    begin = np.array(
        [
            np.log(max(float(start["flux"]), 1e-2)),
            np.log(float(start["r_eff"])),
            float(start["n"]),
            float(start["q"]),
            float(np.mod(start["pa"], 180.0)),
            float(start["x0"]),
            float(start["y0"]),
        ]
    )
    begin = np.clip(begin, lower + 1e-6, upper - 1e-6)
    clock = time.perf_counter()
    try:
        fit = least_squares(
            residuals,
            begin,
            bounds=(lower, upper),
            x_scale="jac",
            diff_step=1e-3,  # GalSim's models are accurate to ~1e-5: wider steps than eps
            max_nfev=max_evaluations,
        )
        values, chi2, evaluations, ok = fit.x, 2.0 * fit.cost, int(fit.nfev), fit.success
    except (galsim.GalSimError, RuntimeError, ValueError):
        values, chi2, evaluations, ok = np.full(7, np.nan), np.nan, 0, False
    seconds = time.perf_counter() - clock
    log_flux, log_r, n, q, pa, x0, y0 = values
    return dict(
        flux=float(np.exp(log_flux)),
        r_eff=float(np.exp(log_r)),
        n=float(n),
        q=float(q),
        pa=float(np.mod(pa, 180.0)),
        x0=float(x0),
        y0=float(y0),
        chi2=float(chi2),
        evaluations=evaluations,
        seconds=seconds,
        converged=bool(ok),
    )


# ---------------------------------------------------------------- pysersic
def pysersic_fit(
    image,
    sigma,
    psf_image,
    pixel_scale: float,
    seed: int,
    mask=None,
    *,
    num_warmup: int = 500,
    num_samples: int = 500,
):
    """NUTS with pysersic (its `autoprior` from the image, its default HybridRenderer,
    one chain): posterior medians in jaxgal's conventions, with `ess` (the smallest bulk
    effective sample size over the Sersic parameters) and `seconds` (compile included:
    pysersic builds and compiles a model per image). pysersic's `r_eff` is the semi-major
    axis in pixels, `ellip = 1 - q`, `theta` in radians from +y, `xc, yc` 0-based pixels.
    Square images only (pysersic's pixel grid is built from `shape[0]` and `shape[1]`
    swapped)."""
    import arviz
    import jax
    import pysersic

    image = np.asarray(image, np.float32)
    ny, nx = image.shape
    bad = None if mask is None else ~np.asarray(mask, bool)
    prior = pysersic.autoprior(image, "sersic", mask=bad, sky_type="none")
    fitter = pysersic.FitSingle(
        data=image,
        rms=np.asarray(sigma, np.float32),
        psf=np.asarray(psf_image, np.float32),
        prior=prior,
        mask=bad,
    )
    clock = time.perf_counter()
    results = fitter.sample(
        jax.random.key(seed),
        num_samples=num_samples,
        num_warmup=num_warmup,
        num_chains=1,
        return_model=False,
        mcmc_kwargs={"progress_bar": False},
    )
    seconds = time.perf_counter() - clock
    posterior = results.idata.posterior
    median = {name: float(np.median(posterior[name].values)) for name in posterior.data_vars}
    names = ["xc", "yc", "flux", "r_eff", "n", "ellip", "theta"]
    ess = arviz.ess(results.idata, var_names=names, method="bulk")
    q = 1.0 - median["ellip"]
    return dict(
        flux=median["flux"],
        r_eff=float(median["r_eff"] * np.sqrt(q) * pixel_scale),
        n=median["n"],
        q=float(q),
        pa=float(np.mod(np.degrees(median["theta"]) + 90.0, 180.0)),
        x0=float((median["xc"] - (nx - 1) / 2.0) * pixel_scale),
        y0=float((median["yc"] - (ny - 1) / 2.0) * pixel_scale),
        ess=float(min(float(ess[name].values) for name in names)),
        samples=num_samples,
        seconds=seconds,
        converged=True,
    )


# ---------------------------------------------------------------- both cores
def _call(task):
    function, args, kwargs = task
    return function(*args, **kwargs)


def fit_in_pool(function, tasks, processes: int = 2):
    """Run `function(*args, **kwargs)` for each `(args, kwargs)` in `tasks` on a pool of
    `processes` fresh ("spawn") worker processes, one galaxy at a time each. Returns the
    results in order and the wall-clock seconds of the whole map, pool start-up excluded."""
    context = multiprocessing.get_context("spawn")
    with context.Pool(processes) as pool:
        pool.map(_call, [(_warm_up, (), {})] * processes)  # imports, outside the clock
        clock = time.perf_counter()
        results = pool.map(_call, [(function, a, k) for a, k in tasks], chunksize=1)
        return results, time.perf_counter() - clock


def _warm_up():
    import galsim  # noqa: F401
    import scipy.optimize  # noqa: F401

    try:
        import pyimfit  # noqa: F401
    except ImportError:
        pass
    return True
