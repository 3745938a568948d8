"""Python side of dmin: FuxiCTR-compatible DMIN reference module, spec builder, dmin weights file
writer/reader (safetensors container) and the dmin-export tool.

Modules: spec (no torch), safetensors_io (no torch), model (torch), samples, export, fixtures.
"""

__version__ = "0.1.0"
