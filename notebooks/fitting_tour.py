# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: light
# ---

# # From a cutout to a posterior: CNN, refinement and HMC
#
# Simulate a KiDS-like sample, ask the shipped GaLNet-2 for a first answer, refine it by
# least squares with the differentiable forward model, sample the posterior of one galaxy
# with NUTS, and look at the residuals and the corner plot. Small enough to run in the
# test suite; raise `COUNT`, `num_warmup` and `num_samples` for a real study.

import os
import tempfile

import matplotlib

if not os.environ.get("JPY_PARENT_PID"):  # outside Jupyter: draw to files
    matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

import jaxgal
from jaxgal.fitting.diagnostics import convergence, corner_plot
from jaxgal.io.simulated_set import simulate_set
from jaxgal.simulate import KIDS

COUNT = 4

# 1. A simulated sample: cutouts in counts, their PSF stamps, each pixel's noise sigma and
#    the truths (jaxgal's own simulator; benchmarks/compare_methods.py uses GalSim's).
images, psf_images, sigma, truth = simulate_set(KIDS, COUNT, seed=1)
print(truth["magnitude", "r_eff", "n", "q", "pa", "snr"])

# 2. The CNN's answer, then refinement from it: one call each, an astropy Table back.
options = dict(zero_point=KIDS.zero_point, pixel_scale=KIDS.pixel_scale)
cnn = jaxgal.fit(images, psf_images, sigma, method="cnn", **options)
refined = jaxgal.fit(images, psf_images, sigma, method="cnn+refine", **options)
for name in ("magnitude", "r_eff", "n", "q"):
    print(
        f"{name:9s} truth {np.round(truth[name], 3)}\n"
        f"{'':9s} cnn   {np.round(cnn[name], 3)}\n"
        f"{'':9s} fit   {np.round(refined[name], 3)} +- {np.round(refined[name + '_err'], 3)}"
    )
print("reduced chi2", np.round(refined["reduced_chi2"], 3), "converged", list(refined["converged"]))

# 3. Data, model and residual of each galaxy: the model is the refined Sersic rendered with
#    the galaxy's PSF stamp, exactly as the fit saw it.
grid = jaxgal.PixelGrid(images.shape[1:], KIDS.pixel_scale)
figure, axes = plt.subplots(COUNT, 3, figsize=(6, 2 * COUNT), squeeze=False)
for row in range(COUNT):
    galaxy = jaxgal.Sersic(
        refined["flux"][row],
        refined["r_eff"][row],
        refined["n"][row],
        refined["q"][row],
        refined["pa"][row],
        refined["x0"][row],
        refined["y0"][row],
    )
    model = np.asarray(jaxgal.render(galaxy, grid, jaxgal.PixelPSF(psf_images[row])))
    stretch = np.percentile(images[row], 99.5)
    panels = (images[row], model, (images[row] - model) / sigma[row])
    titles = ("data", "model", "residual / sigma")
    for column, (panel, title) in enumerate(zip(panels, titles, strict=True)):
        limits = (-3, 3) if column == 2 else (-0.05 * stretch, stretch)
        axes[row, column].imshow(panel, origin="lower", cmap="gray", vmin=limits[0], vmax=limits[1])
        axes[row, column].set_title(title, fontsize=8)
        axes[row, column].set_axis_off()
figure.tight_layout()

# 4. The posterior of the first galaxy with NUTS, started at the refined optimum: two
#    chains, short here; r-hat, effective sample size and divergences come with it.
table, posterior = jaxgal.fit(
    images[:1],
    psf_images[:1],
    sigma[:1],
    method="cnn+refine+hmc",
    key=0,
    num_warmup=100,
    num_samples=100,
    num_chains=2,
    return_posterior=True,
    **options,
)
diagnostics = convergence(posterior)
print({name: np.round(np.asarray(value), 3) for name, value in diagnostics.items()})
for name in ("magnitude", "r_eff", "n", "q"):
    print(
        f"{name:9s} truth {truth[name][0]:.3f}  posterior median {table[name][0]:.3f} "
        f"[{table[name + '_lo'][0]:.3f}, {table[name + '_hi'][0]:.3f}]  "
        f"refined {table[name + '_refined'][0]:.3f} +- {table[name + '_refined_err'][0]:.3f}"
    )

# 5. The corner plot, with the truth marked.
truths = [truth[name][0] for name in ("magnitude", "r_eff", "n", "q", "pa", "x0", "y0")]
with tempfile.TemporaryDirectory() as directory:
    corner_plot(posterior.samples[0], truths=truths, path=os.path.join(directory, "corner.png"))
plt.close("all")
