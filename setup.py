"""Install keras_avae and its pinned dependencies (requirements.txt)."""

from pathlib import Path

from setuptools import find_packages, setup

HERE = Path(__file__).parent


# benchmarks/authors_code.py trains the authors' JAX/Haiku code (their `avae/` folder of
# google-deepmind/deepmind-research, never copied here); their checkpointer.py imports dill.
# Versions seen to install and run together with tensorflow 2.21 on Python 3.11.
AUTHORS_REQUIREMENTS = [
    "jax==0.10.2",
    "jaxlib==0.10.2",
    "dm-haiku==0.0.17",
    "optax==0.2.8",
    "dill==0.4.1",
]


def _requirements(name):
    lines = (HERE / name).read_text().splitlines()
    return [line for line in lines if line and not line.startswith(("#", "-r"))]


setup(
    name="keras-avae",
    version="0.1.0",
    description=(
        "Keras 3 models for self-consistent, adversarially robust VAE "
        "representations (Cemgil et al., NeurIPS 2020)."
    ),
    long_description=(HERE / "README.md").read_text(),
    long_description_content_type="text/markdown",
    packages=find_packages(include=["keras_avae", "keras_avae.*"]),
    python_requires=">=3.10",
    install_requires=_requirements("requirements.txt"),
    extras_require={"dev": _requirements("requirements-dev.txt"), "authors": AUTHORS_REQUIREMENTS},
    entry_points={"console_scripts": ["keras-avae=keras_avae.cli:main"]},
)
