"""Sphinx configuration: numpydoc API pages and a sphinx-gallery built from examples/."""

import skdanet

project = "skdanet"
author = "the skdanet developers"
release = version = skdanet.__version__
copyright = "2026, the skdanet developers"

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.intersphinx",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]
autosummary_generate = True
numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
autodoc_default_options = {"members": True, "inherited-members": False}
exclude_patterns = ["_build", "auto_examples/*.ipynb", "auto_examples/*.py",
                    "auto_examples/*.zip", "auto_examples/*.md5", "auto_examples/*.json"]
intersphinx_mapping = {}
html_theme = "alabaster"
templates_path = ["_templates"]
nitpicky = False

sphinx_gallery_conf = {
    "examples_dirs": "../examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "download_all_examples": False,
    "reset_modules": ("matplotlib",),
}
