"""builder's version, on its own so that build code can read it without importing the package's entry points."""

__version__ = "0.1.0"

DISTRIBUTION = (
    "ort-bundle-builder"  # the name on PyPI (`builder` there is another project); imports stay `builder`
)
