"""Install keras_avae with compatible ranges of its dependencies.

Two lists, two purposes: `INSTALL_REQUIRES` below is what `pip install keras-avae` asks for,
ranges that let it live beside other packages; `requirements.txt` is the exact-pinned lock of
the versions tested together, which CI installs (`pip install -r requirements-dev.txt -e .`).
tests/test_setup.py checks that every package of the lock has a range here.
"""

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


# Lower bounds: the versions of requirements.txt, the ones tested. Upper bounds only where a break is
# known: the next major versions of TensorFlow and Keras (the Keras 3 API, `keras.ops`, the `.keras`
# format), of CleverHans (its TF2 `projected_gradient_descent`) and of ART (`TensorFlowV2Classifier`,
# the Auto-PGD and Square attacks the evaluation wraps).
INSTALL_REQUIRES = [
    "tensorflow>=2.21.0,<3",
    "keras>=3.15.1,<4",
    "tensorflow-probability[tf]>=0.25.0",
    "tf-keras>=2.21.0",
    "tensorflow-datasets>=4.9.10",
    "importlib_resources>=6",
    "cleverhans>=4.0.0,<5",
    "adversarial-robustness-toolbox>=1.20.1,<2",
    "scipy>=1.11",
    "matplotlib>=3.8",
    "tensorboard>=2.21.0",
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
    install_requires=INSTALL_REQUIRES,
    extras_require={"dev": _requirements("requirements-dev.txt"), "authors": AUTHORS_REQUIREMENTS},
    entry_points={"console_scripts": ["keras-avae=keras_avae.cli:main"]},
    classifiers=[
        "Development Status :: 3 - Alpha",
        "Intended Audience :: Science/Research",
        "Operating System :: OS Independent",
        "Programming Language :: Python :: 3",
        "Programming Language :: Python :: 3 :: Only",
        "Programming Language :: Python :: 3.11",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
