from jaxgal.render.image import render

__all__ = ["render"]
