from jaxgal.render.image import render, render_lens

__all__ = ["render", "render_lens"]
