"""The 1-D discrete illustration of Cemgil et al. (2020): Section 3.1, Figure 3, Appendix D, Figure 8.

Observations and latents live on circular grids,
X in {c_x, 2 c_x, ..., N_x c_x} with c_x = 2 pi / N_x, and
Z in {c_z, 2 c_z, ..., N_z c_z} with c_z = 2 pi / N_z. Every distribution is a
von-Mises-like table normalised over its grid (Appendix D),

    VM(X; mu, v) = exp(cos(X - mu) / v) / J(mu, v),    J(mu, v) = sum_x exp(cos(x - mu) / v),

with the decoder p(X|Z=z) = VM(X; g(z), v), the encoder
q(Z|X=x) = VM(Z; f^mu(x), f^Sigma(x)), a uniform prior p(Z) and the coupling
p(Z'|Z=z) = VM(Z'; z, nu_rho). The parameters are the tables themselves:
theta = (g_1, ..., g_Nz) and eta = (mu_1, ..., mu_Nx, sigma_1, ..., sigma_Nx),
the spreads kept positive by a softplus. The data pi_hat is an empirical
distribution: the histogram of `DATA_SAMPLES` draws from a mixture of three
bumps, so it has gaps where the VAE never trains its encoder (Figure 8).

Both objectives are computed exactly, as sums over the grids (no sampling):
the VAE bound -KL(pi_hat(X) q(Z|X) || p(X|Z) p(Z)) of eq. (3), and the AVAE
bound of eq. (10), which adds the coupling <log p_rho(Z'|Z)> and the entropy
of the encoder on the delusions X~.

Gradients of the delusion terms. Section 3 holds the decoder fixed where it
generates the delusion (p_theta), and Algorithm 1 feeds the encoder
x~ = stopgradient(decoder(z)). In these exact sums the delusions are drawn
from q~(Z) p_theta(X~|Z); `--delusion-weights fixed` (the default) holds that
whole distribution fixed, so eta is trained on the delusions only through
q(Z'|X~), the encoder applied to them. `--delusion-weights trained` stops only
p_theta, the literal reading of eq. (10): the gradient then also reaches
q~(Z) = sum_x q(Z|x) pi_hat(x), a score-function path that a reparametrised
sampler (Algorithm 1) does not have. With it the encoder moves the data
encodings away from latents whose round trip z -> x~ -> z' fails; those
latents then get no decoder training and Q(Z|Z') p(Z') is far from diagonal.
The value of the objective is the same either way.

Each model is fitted from the same initial tables with Adam on the full,
exact objective. The script then draws, for each model, the four panels of
Figure 3 (`figure3_<model>.png`) and the five panels of Figure 8
(`figure8_<model>.png`; the paper shows them for the VAE), and measures how
far the latent transition joint Q(Z|Z') p(Z') is from symmetric and how much
of its mass lies on the (circular) diagonal.

Examples:
    python examples/discrete_1d.py
    python examples/discrete_1d.py --steps 500 --nx 32 --nz 32 --out /tmp/discrete_1d

Writes the PNGs and `metrics.json` to `--out` (default `runs/discrete_1d`).
"""

import argparse
import json
import math
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

DTYPE = "float64"  # exact sums; nu_rho = 1e-3 puts cos(.) / nu_rho at 1e3.

NU_RHO = 1e-3
"""Spread nu_rho of the coupling p(Z'|Z=z) = VM(Z'; z, nu_rho), "on the order of 1e-3" (Appendix D)."""

DEFAULT_NX = 100
DEFAULT_NZ = 64
DEFAULT_OBS_SPREAD = 1e-3
"""Decoder spread v (not given in the paper). Neighbouring X points get exp(-(1 - cos c_x) / v) of the
peak, 0.14 for N_x = 100: the decoder is nearly a deterministic map, as Proposition 3.1 (v -> 0) assumes."""
DEFAULT_STEPS = 4000
DEFAULT_LEARNING_RATE = 0.02
DEFAULT_SEED = 0

INITIAL_MEAN_STD = 0.1
"""g and f^mu start as N(0, 0.1^2) draws: every z decodes near one x and every x encodes near one z,
as a freshly initialised network's outputs start near a constant."""
INITIAL_ENCODER_SPREAD = 0.5
"""f^Sigma(x) of the initial encoder, a broad bump on the Z circle."""

DATA_CENTRES = (0.15, 0.45, 0.75)
"""Centres of the mixture that pi_hat is drawn from, as fractions of the circle."""
DATA_WEIGHTS = (0.5, 0.3, 0.2)
DATA_SPREAD = 0.05
"""Spread of each mixture component, VM(X; centre, 0.05): about 0.22 rad (3.5 grid steps of N_x = 100)."""
DATA_SAMPLES = 100
DATA_SEED = 0
"""pi_hat is the same data set for every `--seed`, which only changes the initial tables."""

DELUSION_WEIGHTS = ("fixed", "trained")
MODELS = ("vae", "avae")
DPI = 100


# ---------------------------------------------------------------------------
# Grids and tables (Appendix D).


def grid(n):
    """The circular grid {c, 2c, ..., n c} with c = 2 pi / n (Appendix D)."""
    step = 2.0 * math.pi / n
    return step * np.arange(1, n + 1, dtype=DTYPE)


def log_von_mises_table(points, mean, spread):
    """log VM(points; mean_i, spread_i) for each row i, normalised over `points` (Appendix D).

    VM(X; mu, v) = exp(cos(X - mu) / v) / J(mu, v) with J(mu, v) = sum_x exp(cos(x - mu) / v);
    J is taken in log space so that spreads like nu_rho = 1e-3 do not overflow.

    Args:
        points: `(n,)` grid on which the table is normalised.
        mean: `(m,)` location of each row.
        spread: `(m,)` positive spread v of each row (a scalar broadcasts).

    Returns:
        `(m, n)` log-probabilities; each row's exponential sums to 1.

    Example:
        log_p = log_von_mises_table(grid(64), g, 1e-3)
    """
    mean = tf.convert_to_tensor(mean, dtype=DTYPE)
    spread = tf.broadcast_to(tf.convert_to_tensor(spread, dtype=DTYPE), tf.shape(mean))
    energy = tf.cos(tf.constant(points, DTYPE)[None, :] - mean[:, None]) / spread[:, None]
    return energy - tf.reduce_logsumexp(energy, axis=1, keepdims=True)


def log_decoder(g, x_points, obs_spread):
    """log p(X|Z=z; theta) = log VM(X; g(z), v), Appendix D. `(N_z, N_x)`, rows z."""
    return log_von_mises_table(x_points, g, obs_spread)


def encoder_spread(raw_spread):
    """f^Sigma(x; eta) = softplus(raw), kept positive."""
    return tf.nn.softplus(raw_spread)


def log_encoder(f_mu, raw_spread, z_points):
    """log q(Z|X=x; eta) = log VM(Z; f^mu(x), f^Sigma(x)), Appendix D. `(N_x, N_z)`, rows x."""
    return log_von_mises_table(z_points, f_mu, encoder_spread(raw_spread))


def log_coupling(z_points, nu_rho=NU_RHO):
    """log p_rho(Z'|Z=z) = log VM(Z'; z, nu_rho), Appendix D. `(N_z, N_z)`, rows z, columns z'."""
    return log_von_mises_table(z_points, z_points, nu_rho)


def mixture_of_bumps(n_x, centres=DATA_CENTRES, weights=DATA_WEIGHTS, spread=DATA_SPREAD):
    """sum_k w_k VM(X; 2 pi c_k, spread) on the X grid, the distribution that pi_hat is drawn from."""
    x_points = grid(n_x)
    means = 2.0 * math.pi * np.asarray(centres, dtype=DTYPE)
    table = np.exp(log_von_mises_table(x_points, means, spread).numpy())
    mixture = np.asarray(weights, dtype=DTYPE) @ table
    return mixture / mixture.sum()


def data_distribution(n_x, num_samples=DATA_SAMPLES, seed=DATA_SEED):
    """pi_hat(X) = (1/N) sum_i delta(X - x_i) for N draws x_i from `mixture_of_bumps` (Section 2)."""
    rng = np.random.default_rng(seed)
    draws = rng.choice(n_x, size=num_samples, p=mixture_of_bumps(n_x))
    counts = np.bincount(draws, minlength=n_x).astype(DTYPE)
    return counts / counts.sum()


# ---------------------------------------------------------------------------
# Objectives (eqs. 3 and 10), exact sums over the grids.


def _xlogy(x, log_y):
    """x * log_y with 0 * log 0 = 0 (entries with x = 0 do not contribute)."""
    return tf.where(x > 0, x * log_y, tf.zeros_like(x))


def vae_objective(data, log_q, log_p):
    """-KL(pi_hat(X) q(Z|X) || p(X|Z) p(Z)), eq. (3), with the uniform prior p(Z) = 1 / N_z.

    Keeps the data entropy term -<log pi_hat(X)>, so the value is the exact
    (non-positive) negative KL: the ELBO plus the entropy of pi_hat.

    Args:
        data: `(N_x,)` pi_hat(X).
        log_q: `(N_x, N_z)` log q(Z|X), rows x.
        log_p: `(N_z, N_x)` log p(X|Z), rows z.

    Returns:
        Scalar -KL.

    Example:
        negative_kl = vae_objective(data, log_encoder(f_mu, raw, z_points), log_decoder(g, x_points, v))
    """
    n_z = tf.cast(tf.shape(log_q)[1], DTYPE)
    joint_q = data[:, None] * tf.exp(log_q)  # pi_hat(x) q(z|x)
    log_data = tf.math.log(tf.where(data > 0, data, tf.ones_like(data)))
    log_ratio = tf.transpose(log_p) - tf.math.log(n_z) - log_q - log_data[:, None]
    return tf.reduce_sum(_xlogy(joint_q, log_ratio))


def delusion_terms(data, log_q, log_p, log_coupling_table, delusion_weights="fixed"):
    """The two terms that eq. (10) adds to the VAE bound, as exact sums.

    coupling = <log p_rho(Z'|Z)>_{q~(Z) q~(Z'|Z)} and
    delusion_entropy = -<log q(Z'|X~)>_{q(Z'|X~) q~(X~)}, with
    q~(Z) = sum_x q(Z|x) pi_hat(x),  q~(Z'|Z) = sum_x q(Z'|X~=x) p_theta(X~=x|Z),
    q~(X~) = sum_z p_theta(X~|z) q~(z).

    The decoder p_theta is held fixed (`tf.stop_gradient`) where it generates
    the delusion X~ (Section 3). With `delusion_weights="fixed"` q~(Z) is held
    fixed in these two terms as well, so the whole delusion distribution
    q~(Z) p_theta(X~|Z) is data, as x~ = stopgradient(decoder(z)) is in
    Algorithm 1, and eta learns from it only through q(Z'|X~). With
    `"trained"` the gradient also flows through q~(Z). The values agree.

    Args:
        data: `(N_x,)` pi_hat(X).
        log_q: `(N_x, N_z)` log q(Z|X), rows x.
        log_p: `(N_z, N_x)` log p(X|Z), rows z.
        log_coupling_table: `(N_z, N_z)` log p_rho(Z'|Z), rows z.
        delusion_weights: `"fixed"` or `"trained"`.

    Returns:
        Dict of scalars `coupling` and `delusion_entropy`.
    """
    if delusion_weights not in DELUSION_WEIGHTS:
        raise ValueError(
            f"`delusion_weights` must be one of {DELUSION_WEIGHTS}. Received: delusion_weights={delusion_weights!r}"
        )
    q = tf.exp(log_q)
    p_theta = tf.stop_gradient(tf.exp(log_p))  # the decoder as a factor of Q_AVAE
    aggregate_posterior = tf.linalg.matvec(q, data, transpose_a=True)  # q~(z)
    if delusion_weights == "fixed":
        aggregate_posterior = tf.stop_gradient(aggregate_posterior)
    transition = tf.matmul(p_theta, q)  # q~(z'|z), rows z
    coupling = tf.reduce_sum(aggregate_posterior[:, None] * transition * log_coupling_table)
    delusions = tf.linalg.matvec(p_theta, aggregate_posterior, transpose_a=True)  # q~(x~)
    entropy = -tf.reduce_sum(q * log_q, axis=1)  # H[q(Z'|X~=x)]
    return {
        "coupling": coupling,
        "delusion_entropy": tf.reduce_sum(delusions * entropy),
    }


def avae_objective(data, log_q, log_p, log_coupling_table, delusion_weights="fixed"):
    """B_AVAE of eq. (10): the VAE bound (3) plus the coupling and the delusion entropy.

    As in eq. (10), -<log p_theta(X~|Z)>, constant once the decoder factor is
    held fixed, is left out; `decoder_entropy` supplies it when the exact
    -KL(Q_AVAE || P_rho) of Appendix C.1 (u(X~) = 1) is wanted.

    Returns:
        Dict of scalars `objective`, `negative_kl` (eq. 3), `coupling`, `delusion_entropy`.
    """
    terms = delusion_terms(data, log_q, log_p, log_coupling_table, delusion_weights)
    terms["negative_kl"] = vae_objective(data, log_q, log_p)
    terms["objective"] = terms["negative_kl"] + terms["coupling"] + terms["delusion_entropy"]
    return terms


def decoder_entropy(data, log_q, log_p):
    """<H[p_theta(X~|Z)]>_{q~(Z)}, the term of -KL(Q_AVAE || P_rho) (Appendix C.1) that eq. (10) drops."""
    aggregate_posterior = tf.linalg.matvec(tf.exp(log_q), data, transpose_a=True)
    entropy = -tf.reduce_sum(tf.exp(log_p) * log_p, axis=1)
    return tf.reduce_sum(aggregate_posterior * entropy)


# ---------------------------------------------------------------------------
# Derived tables (Figure 3, Figure 8) and the symmetry measures.


def model_marginal(decoder):
    """p(X; theta) = sum_z p(X|z) p(z) with the uniform prior. `decoder` is `(N_z, N_x)`."""
    return decoder.mean(axis=0)


def observation_joint(encoder, decoder):
    """Q(X'|X) p(X), Q(X'|X) = sum_z p(X'|Z'=z) q(Z=z|X) (Section 3.1). `(N_x, N_x)`, rows X, columns X'."""
    return model_marginal(decoder)[:, None] * (encoder @ decoder)


def latent_joint(encoder, decoder):
    """Q(Z|Z') p(Z'), Q(Z|Z') = sum_x q(Z|X=x) p(X'=x|Z') (Section 3.1). `(N_z, N_z)`, rows Z', columns Z."""
    return (decoder @ encoder) / decoder.shape[0]


def asymmetry(joint):
    """||A - A^T||_F / ||A||_F: 0 for a symmetric joint."""
    return float(np.linalg.norm(joint - joint.T) / np.linalg.norm(joint))


def diagonal_mass(joint, width):
    """Probability that the two indices of `joint` are within `width` grid steps on the circle."""
    n = joint.shape[0]
    offset = np.abs(np.arange(n)[:, None] - np.arange(n)[None, :])
    distance = np.minimum(offset, n - offset)
    return float(joint[distance <= width].sum())


def measure(encoder, decoder):
    """The symmetry and diagonal measures of Figure 3's joints."""
    z_joint = latent_joint(encoder, decoder)
    return {
        "latent_asymmetry": asymmetry(z_joint),
        "latent_diagonal_mass_1": diagonal_mass(z_joint, 1),
        "latent_diagonal_mass_2": diagonal_mass(z_joint, 2),
        "observation_asymmetry": asymmetry(observation_joint(encoder, decoder)),
    }


# ---------------------------------------------------------------------------
# Fitting.


class DiscreteModel:
    """The tables theta = (g) and eta = (f^mu, raw f^Sigma) of Appendix D as Keras variables."""

    def __init__(self, n_x, n_z, obs_spread, seed, delusion_weights="fixed"):
        rng = np.random.default_rng(seed)
        self.x_points, self.z_points = grid(n_x), grid(n_z)
        self.obs_spread = obs_spread
        self.delusion_weights = delusion_weights
        self.g = keras.Variable(rng.normal(0.0, INITIAL_MEAN_STD, n_z), dtype=DTYPE, name="g")
        self.f_mu = keras.Variable(rng.normal(0.0, INITIAL_MEAN_STD, n_x), dtype=DTYPE, name="f_mu")
        raw = math.log(math.expm1(INITIAL_ENCODER_SPREAD))  # softplus^{-1}
        self.f_sigma = keras.Variable(np.full(n_x, raw), dtype=DTYPE, name="f_sigma")
        self.log_coupling = log_coupling(self.z_points)

    @property
    def trainable_variables(self):
        return [self.g, self.f_mu, self.f_sigma]

    def log_tables(self):
        """`(log q(Z|X), log p(X|Z))`."""
        return (
            log_encoder(self.f_mu, self.f_sigma, self.z_points),
            log_decoder(self.g, self.x_points, self.obs_spread),
        )

    def terms(self, data, model_name):
        """The objective and its terms: eq. (3) for `"vae"`, eq. (10) for `"avae"`."""
        log_q, log_p = self.log_tables()
        if model_name == "vae":
            value = vae_objective(data, log_q, log_p)
            return {"objective": value, "negative_kl": value}
        return avae_objective(data, log_q, log_p, self.log_coupling, self.delusion_weights)

    def tables(self):
        """`(q(Z|X), p(X|Z))` as NumPy arrays."""
        log_q, log_p = self.log_tables()
        return np.exp(log_q.numpy()), np.exp(log_p.numpy())


def fit(model, data, model_name, steps, learning_rate=DEFAULT_LEARNING_RATE):
    """Maximises the exact objective (eq. 3 or eq. 10) with Adam; returns the final terms.

    The learning rate decays to zero along a cosine, so that the tables settle
    (the coupling's 1 / nu_rho scale makes a constant step oscillate).
    """
    data = tf.constant(data, DTYPE)
    optimizer = keras.optimizers.Adam(keras.optimizers.schedules.CosineDecay(learning_rate, steps))
    optimizer.build(model.trainable_variables)

    @tf.function
    def train_step():
        with tf.GradientTape() as tape:
            loss = -model.terms(data, model_name)["objective"]
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply(grads, model.trainable_variables)

    for _ in range(steps):
        train_step()
    return {name: float(value) for name, value in model.terms(data, model_name).items()}


# ---------------------------------------------------------------------------
# Figures.


def _new_figure(figsize):
    figure = Figure(figsize=figsize, dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _image(ax, table, title, xlabel, ylabel):
    ax.imshow(table, origin="lower", aspect="auto", cmap="viridis", interpolation="nearest")
    ax.set_title(title, fontsize=9)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_xticks([])
    ax.set_yticks([])


def draw_figure3(encoder, decoder, title, path):
    """Figure 3 for one model, clockwise from north east: p(X'|Z'), Q(X'|X)p(X), q(Z|X), Q(Z|Z')p(Z').

    The panels share axes: Z' runs up both northern panels, Z along both
    western ones, X' along the eastern ones and X up the southern ones.
    """
    figure = _new_figure((7, 6.5))
    axes = figure.subplots(2, 2)
    _image(axes[0, 1], decoder, "i) decoder p(X'|Z')", "X'", "Z'")
    _image(axes[1, 1], observation_joint(encoder, decoder), "ii) Q(X'|X) p(X)", "X'", "X")
    _image(axes[1, 0], encoder, "iii) encoder q(Z|X)", "Z", "X")
    _image(axes[0, 0], latent_joint(encoder, decoder), "iv) Q(Z|Z') p(Z')", "Z", "Z'")
    figure.suptitle(title)
    figure.savefig(path, format="png", dpi=DPI)


def draw_figure8(data, encoder, decoder, x_points, title, path):
    """Figure 8, left to right: pi_hat(X), pi_hat(X) q(Z|X), p(X) q(Z|X), p(X|Z) p(Z), p(X)."""
    marginal = model_marginal(decoder)
    figure = _new_figure((16, 3.4))
    axes = figure.subplots(1, 5)
    axes[0].bar(x_points, data, width=x_points[0], color="black")
    axes[0].set_title("i) pi_hat(X)", fontsize=9)
    _image(axes[1], data[:, None] * encoder, "ii) pi_hat(X) q(Z|X)", "Z", "X")
    _image(axes[2], marginal[:, None] * encoder, "iii) p(X) q(Z|X)", "Z", "X")
    _image(axes[3], decoder.T / decoder.shape[0], "iv) p(X|Z) p(Z)", "Z", "X")
    axes[4].plot(x_points, marginal, color="black")
    axes[4].set_title("v) p(X)", fontsize=9)
    for ax in (axes[0], axes[4]):
        ax.set_xlabel("X")
        ax.set_xlim(0, 2 * math.pi)
    figure.suptitle(title)
    figure.savefig(path, format="png", dpi=DPI)


# ---------------------------------------------------------------------------
# Command line.


def _positive_int(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _grid_size(text):
    value = int(text)
    if value < 8:
        raise argparse.ArgumentTypeError(f"must be an integer >= 8, got {text}")
    return value


def _positive_float(text):
    value = float(text)
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def build_parser():
    parser = argparse.ArgumentParser(
        description="The 1-D discrete VAE / AVAE of Cemgil et al. (2020), Section 3.1 and Appendix D.",
    )
    parser.add_argument("--out", default="runs/discrete_1d", help="Output directory (default: %(default)s).")
    parser.add_argument(
        "--steps", type=_positive_int, default=DEFAULT_STEPS, help="Adam steps per model (default: %(default)s)."
    )
    parser.add_argument("--nx", type=_grid_size, default=DEFAULT_NX, help="N_x (default: %(default)s).")
    parser.add_argument("--nz", type=_grid_size, default=DEFAULT_NZ, help="N_z (default: %(default)s).")
    parser.add_argument(
        "--obs-spread", type=_positive_float, default=DEFAULT_OBS_SPREAD,
        help="Decoder spread v (default: %(default)s).",
    )
    parser.add_argument(
        "--learning-rate", type=_positive_float, default=DEFAULT_LEARNING_RATE,
        help="Initial Adam learning rate, decayed to 0 along a cosine (default: %(default)s).",
    )
    parser.add_argument(
        "--delusion-weights", choices=DELUSION_WEIGHTS, default="fixed",
        help="Whether the AVAE gradient flows through q~(Z) in the delusion terms (default: %(default)s; "
        "see the module docstring).",
    )
    parser.add_argument(
        "--seed", type=int, default=DEFAULT_SEED, help="Seed of the initial tables (default: %(default)s)."
    )
    return parser


def report(metrics):
    """Prints the objectives and the measures of Q(Z|Z') p(Z') for both models."""
    config = metrics["config"]
    print(f"N_x = {config['nx']}, N_z = {config['nz']}, v = {config['obs_spread']}, nu_rho = {config['nu_rho']}, "
          f"{config['steps']} steps, delusion weights {config['delusion_weights']}")
    print(f"{'':6}{'eq. (3)':>9}{'objective':>11}{'asym Z':>9}{'diag<=1':>9}{'diag<=2':>9}{'asym X':>9}{'time s':>8}")
    for name in MODELS:
        m = metrics[name]
        print(
            f"{name.upper():6}{m['negative_kl']:9.3f}{m['objective']:11.3f}{m['latent_asymmetry']:9.3f}"
            f"{m['latent_diagonal_mass_1']:9.3f}{m['latent_diagonal_mass_2']:9.3f}"
            f"{m['observation_asymmetry']:9.3f}{m['seconds']:8.1f}"
        )
    print("asym: ||A - A^T||_F / ||A||_F; diag<=k: mass of Q(Z|Z') p(Z') within k grid steps of the diagonal.")
    print(f"Saved figures and metrics.json to {metrics['out']}")


def main(argv=None):
    """Fits the VAE and the AVAE, draws Figures 3 and 8, and returns the metrics written to metrics.json."""
    args = build_parser().parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    data = data_distribution(args.nx)
    metrics = {
        "config": {
            "nx": args.nx, "nz": args.nz, "obs_spread": args.obs_spread, "nu_rho": NU_RHO,
            "steps": args.steps, "learning_rate": args.learning_rate,
            "delusion_weights": args.delusion_weights, "seed": args.seed,
        },
        "out": str(out),
    }
    for name in MODELS:
        start = time.perf_counter()
        # Both models start from the same tables.
        model = DiscreteModel(args.nx, args.nz, args.obs_spread, args.seed, args.delusion_weights)
        terms = fit(model, data, name, args.steps, args.learning_rate)
        encoder, decoder = model.tables()
        metrics[name] = {**terms, **measure(encoder, decoder), "seconds": time.perf_counter() - start}
        draw_figure3(encoder, decoder, f"{name.upper()} (Figure 3)", out / f"figure3_{name}.png")
        draw_figure8(data, encoder, decoder, model.x_points, f"{name.upper()} (Figure 8)", out / f"figure8_{name}.png")
    with open(out / "metrics.json", "w") as file:
        json.dump(metrics, file, indent=2)
        file.write("\n")
    report(metrics)
    return metrics


if __name__ == "__main__":
    main()
