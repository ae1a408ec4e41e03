"""The single source of the package version (read by hatchling and by ``ctfy_vault.__version__``)."""

__version__ = "0.1.0.dev0"
