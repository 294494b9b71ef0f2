"""Generate notebooks/03_initialisation.ipynb (run, then execute it)."""
import sys

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

cells = []


def md(text):
    cells.append(new_markdown_cell(text.strip("\n")))


def code(text, *tags):
    meta = {"tags": list(tags)} if tags else {}
    cells.append(new_code_cell(text.strip("\n"), metadata=meta))


# ---------------------------------------------------------------------------
md(r"""
# Initialisation: why the first weights matter

Before a network has seen a single image, we must give every weight a
value. It seems a detail: training will change them anyway. It is not. One
of the seed projects of this book trained a network on MNIST from weights
drawn with `np.random.randn`, that is from $\mathcal{N}(0, 1)$, and wrote
down what happened: it *"caused Vanishing/Exploding Gradient"*. Then it
listed the cures: Xavier/Glorot, He and scaled uniform initialisation. This
chapter takes that note apart. We measure what a deep network does with
its first batch of digits under each recipe, derive from one line of
probability why the good recipes have the constants they have, and train
the same network from each starting point to see which ones learn.

**What you will build.** A *probe* that sends a batch of real MNIST images
through a 10-layer network one layer at a time, and a loss gradient back,
recording what every layer passes on. Then the two initialisers that fix
the problem, written by hand and checked against `nnlib.init`. And a race:
one deep network, trained from five starting points on the same batches,
and a deeper one from two.

**What you will learn.**
- why the scale of the initial weights decides whether a deep network can
  learn at all, and what "vanishing" and "exploding" look like in numbers;
- the variance of a sum, $\operatorname{Var}(z) = n_\text{in} \cdot
  \operatorname{Var}(w) \cdot \mathbb{E}[x^2]$, forwards and backwards,
  and the factor 2 that a ReLU adds;
- where Xavier/Glorot's $2/(n_\text{in} + n_\text{out})$ and He's
  $2/n_\text{in}$ come from, and which activation each was derived for;
- why the weights must be random at all, and why ReLU networks cannot be
  judged by their dead units at the start.

**What you need.** [Chapter 2](02_mlp_by_hand.ipynb): linear layers, ReLU,
backpropagation, `nnlib.train.fit`. From probability: mean, variance, and
that the variance of a sum of independent terms is the sum of their
variances.
""")

code(r"""
import functools

import numpy as np

from nnlib import data, explore, init, layers, live, losses, models, optim
from nnlib import plots, train

SEED = 0
""")

md(r"""
The data, as in the chapters before: the 60,000 training images, split
into 50,000 to train on and 10,000 for validation, normalised with the
training set's mean and standard deviation and flattened into rows of 784
pixels. The test set waits for the very end.
""")

code(r"""
X_train, y_train, X_test, y_test = data.load_mnist()
""", "nbval-ignore-output")

code(r"""
X_tr, y_tr, X_val, y_val = data.train_val_split(
    data.normalize(X_train, flatten=True), y_train, n_val=10_000,
    rng=np.random.default_rng(SEED))
X_test = data.normalize(X_test, flatten=True)
X_probe, y_probe = X_tr[:1000], y_tr[:1000]     # (1000, 784), (1000,)
print("train", X_tr.shape, " validation", X_val.shape,
      " test", X_test.shape, " probe batch", X_probe.shape)
""")

md(r"""
`X_probe` is a batch of 1,000 real training digits. We will push it
through networks that have not been trained yet, to see what they do with
real input at the moment training starts.

## The seed's recipes

Here are the recipes from the seed's notes, as it wrote them, with
$n_\text{in}$ the number of inputs of a layer and $n_\text{out}$ the number
of its outputs:

| the seed calls it | the seed's formula | what the formula is |
|---|---|---|
| "normal distribution numbers (randn)" | `randn(shape)` | $\mathcal{N}(0, 1)$, variance 1 |
| "Xavier/Glorot, for tanh" | `randn(shape) * sqrt(1 / n_in)` | variance $1/n_\text{in}$: usually called *LeCun* initialisation |
| "Xavier/Glorot, for sigmoid" | `randn(shape) * sqrt(2 / (n_in + n_out))` | variance $2/(n_\text{in} + n_\text{out})$: Xavier/Glorot |
| "He (good for ReLU)" | `randn(shape) * sqrt(2 / n_in)` | variance $2/n_\text{in}$: He/Kaiming |
| "scaled uniform", scale e.g. 0.1 | `(rand(shape) * 2 - 1) * 0.1` | $\mathcal{U}(-0.1, 0.1)$, variance $0.1^2/3$ |

The formulas are right; two of the labels are a little off. Glorot and
Bengio derived $2/(n_\text{in} + n_\text{out})$ for units like tanh, which
are symmetric around zero with slope 1 there {cite}`glorot2010understanding`;
the sigmoid is neither (its slope at 0 is $1/4$). And $1/n_\text{in}$ is
the older rule that Xavier's refines. We will see below where each one
comes from.

`nnlib.init` has all of them. Each initialiser is a function
`(shape, rng, dtype) -> array`, and layers take one through `init=`,
by name or as the function itself:

| name in `nnlib.init` | distribution |
|---|---|
| `"normal"` | $\mathcal{N}(0, \sigma^2)$, $\sigma = 1$ unless you pass `std=` |
| `"scaled_uniform"` | $\mathcal{U}(-s, s)$, $s = 0.1$ unless you pass `scale=` |
| `"xavier"` (`xavier_normal`), `"xavier_uniform"` | variance $2/(n_\text{in} + n_\text{out})$ |
| `"he"` (`he_normal`), `"he_uniform"` | variance $2/n_\text{in}$ |

We will compare five starting points: the seed's $\mathcal{N}(0, 1)$ and
$\mathcal{U}(-0.1, 0.1)$, a popular "small" choice, $\mathcal{N}(0,
0.01^2)$, and Xavier and He. `functools.partial` turns `init.normal` with
`std=0.01` into an initialiser of its own:
""")

code(r"""
small_normal = functools.partial(init.normal, std=0.01)

SCHEMES = {
    "N(0, 1)": "normal",
    "N(0, 0.01²)": small_normal,
    "U(±0.1)": "scaled_uniform",
    "Xavier": "xavier",
    "He": "he",
}
""")

md(r"""
## Why random at all?

The simplest start would be zero, or any constant. Try it with a small
network, 784 → 256 → 10, whose weights are all 0.01, and give it 100
steps of SGD beside the same network started from random (He) weights. A
custom initialiser is just a function with the right signature:
""")

code(r"""
def constant_init(shape, rng, dtype=np.float32):
    # Every weight 0.01: a valid initialiser, and a bad one.
    return np.full(shape, 0.01, dtype)


def train_small_mlp(scheme, num_steps=100):
    # A 784-256-10 network after num_steps steps of SGD on batches of 64.
    model = models.mlp((784, 256, 10), init=scheme,
                       rng=np.random.default_rng(SEED))
    optimizer = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    n = 64 * num_steps
    train.fit(model, losses.CrossEntropyLoss(), optimizer,
              (X_tr[:n], y_tr[:n]), num_epochs=1, batch_size=64,
              rng=np.random.default_rng(SEED))
    return model


for name, scheme in [("all 0.01", constant_init), ("He", "he")]:
    model = train_small_mlp(scheme)
    W1 = model[0].weight.data                       # (256, 784)
    same = np.sum(np.all(np.isclose(W1, W1[0], atol=1e-5), axis=1))
    _, acc = train.evaluate(model, X_val, y_val)
    print(f"{name:9}  hidden units equal to unit 0: {same:3} of 256   "
          f"validation accuracy {acc:.2%}")
""")

md(r"""
With constant weights, every hidden unit computes the same sum of the same
pixels, so all 256 produce the same output. In the backward pass each gets
the same gradient, so each takes the same step, and after 100 steps they
are all still equal: 256 units doing the work of one. (Equal up to the
last bits: the matrix products add up different rows in slightly
different orders, hence the tolerance. Train for a whole epoch and these
rounding differences grow until they break the symmetry by accident.
Rounding errors are not a plan.) Random weights *break the symmetry*: each
unit starts out different and gets its own gradient. The biases can then
start at zero; the weights alone make the units differ.

So the weights must be random. The question of this chapter is: random
with which spread?

## One layer: the variance of a sum

Take the first layer of a network. A batch of inputs $X \in
\mathbb{R}^{N \times n_\text{in}}$ (here $N = 1000$ images,
$n_\text{in} = 784$ pixels) meets a weight matrix $W \in
\mathbb{R}^{n_\text{out} \times n_\text{in}}$ (here $n_\text{out} = 256$);
with the bias at zero, the layer computes

$$
Z = X W^\top \in \mathbb{R}^{N \times n_\text{out}}, \qquad
z_{nj} = \sum_{i=1}^{n_\text{in}} x_{ni} \, w_{ji} .
$$

Each output is a sum of $n_\text{in}$ products. Suppose the weights are
drawn independently, with mean 0 and variance $\sigma_w^2$, and
independently of the inputs. Then each product has mean
$\mathbb{E}[x_{ni}]\,\mathbb{E}[w_{ji}] = 0$ and variance
$\mathbb{E}[x_{ni}^2 w_{ji}^2] = \mathbb{E}[x_{ni}^2]\,\sigma_w^2$, and the
products are uncorrelated (they share no weight), so their variances add:

$$
\operatorname{Var}(z) = n_\text{in} \cdot \sigma_w^2 \cdot \mathbb{E}[x^2] ,
$$

where $\mathbb{E}[x^2]$ is the mean square of the inputs. Note: the mean
*square*, not the variance. The two are equal only for inputs of mean
zero.

Our normalised pixels have mean 0 and variance 1 over the whole training
set, so $\mathbb{E}[x^2] \approx 1$ and $\operatorname{Var}(z) \approx 784
\, \sigma_w^2$. With $\mathcal{N}(0, 1)$ weights the first layer's outputs
already have a standard deviation of $\sqrt{784} = 28$, although every
input has one of about 1. To check the formula on real digits, we need the
variance of one weight under each scheme, for a layer with `fan_in`
inputs and `fan_out` outputs:
""")

code(r"""
def weight_variance(name, fan_in, fan_out):
    # Var(w) of each scheme; U(-a, a) has variance a² / 3.
    return {"N(0, 1)": 1.0,
            "N(0, 0.01²)": 0.01 ** 2,
            "U(±0.1)": 0.1 ** 2 / 3,
            "Xavier": 2 / (fan_in + fan_out),
            "He": 2 / fan_in}[name]


mean_square = float(np.mean(X_probe ** 2))
print(f"E[x²] of the probe batch: {mean_square:.3f}\n")
print(f"{'scheme':12} {'Var(w)':>9}  {'predicted std(z)':>16}  "
      f"{'measured':>9}")
for name, scheme in SCHEMES.items():
    W = init.get(scheme)((256, 784), np.random.default_rng(SEED))
    Z = X_probe @ W.T                                   # (1000, 256)
    var_w = weight_variance(name, fan_in=784, fan_out=256)
    predicted = np.sqrt(784 * var_w * mean_square)
    print(f"{name:12} {var_w:9.3g}  {predicted:16.3g}  {Z.std():9.3g}")
    assert abs(Z.std() / predicted - 1) < 0.1
""")

md(r"""
The prediction holds to a few percent, on real digits whose pixels are far
from independent. (The weights' independence is what the argument
needs.)

### Through a ReLU: the factor 2

The next layer's input is not $z$ but $h = \max(0, z)$. If $z$ is
symmetric around 0, as it is here (a sum of products with weights of
either sign), a ReLU keeps its positive half and sets the rest to zero, so

$$
\mathbb{E}[h^2] = \mathbb{E}\left[z^2 \, \mathbb{1}(z > 0)\right]
= \tfrac{1}{2} \, \mathbb{E}[z^2] = \tfrac{1}{2} \operatorname{Var}(z) .
$$

(The mean of $h$ is *not* zero, which is why the formula above asks for
$\mathbb{E}[x^2]$ and not the variance.) Write $z^{(l)}$ for the outputs of
layer $l$ before the ReLU and $n_{l-1}$ for its number of inputs. Layer
$l$ then turns the variance of layer $l - 1$ into

$$
\operatorname{Var}\big(z^{(l)}\big)
= n_{l-1} \, \sigma_w^2 \cdot \tfrac{1}{2}
  \operatorname{Var}\big(z^{(l-1)}\big) ,
\qquad\text{so}\qquad
\operatorname{Var}\big(z^{(L)}\big) = \operatorname{Var}\big(z^{(1)}\big)
  \prod_{l=2}^{L} \tfrac{1}{2} \, n_{l-1} \, \sigma_w^2 .
$$

A product of $L - 1$ equal factors: if the factor is above 1 the variance
grows exponentially with depth, if it is below 1 it shrinks exponentially.
Only a factor of exactly 1 keeps it, and that fixes the weights' variance:

$$
\sigma_w^2 = \frac{2}{n_\text{in}} \qquad \text{(He et al., for ReLU)}.
$$

This is He initialisation {cite}`he2015delving`. The 2 is there to make up
for the half of the signal each ReLU throws away. For tanh, which is
close to the identity around 0 ($\tanh z \approx z$, slope 1), nothing is
thrown away while the signal is small, and the same argument gives
$\sigma_w^2 = 1/n_\text{in}$: the seed's "Xavier for tanh", LeCun's rule.

Check the half on the first layer's outputs under He:
""")

code(r"""
W = init.he_normal((256, 784), np.random.default_rng(SEED))
Z = X_probe @ W.T                                       # (1000, 256)
H = np.maximum(Z, 0)
print(f"E[h²] / Var(z) = {np.mean(H ** 2) / Z.var():.3f}")
print(f"fraction of z > 0: {np.mean(Z > 0):.3f}")
assert abs(np.mean(H ** 2) / Z.var() - 0.5) < 0.05
""")

md(r"""
### Backwards: the same sum, the other way

Backpropagation through the same layer computes, for the gradient
$\frac{\partial L}{\partial Z} \in \mathbb{R}^{N \times n_\text{out}}$
arriving from above,

$$
\frac{\partial L}{\partial X} = \frac{\partial L}{\partial Z} \, W
\in \mathbb{R}^{N \times n_\text{in}}, \qquad
\frac{\partial L}{\partial x_{ni}} = \sum_{j=1}^{n_\text{out}}
  \frac{\partial L}{\partial z_{nj}} \, w_{ji} ,
$$

a sum of $n_\text{out}$ terms this time. The same argument gives
$\operatorname{Var}(\partial L / \partial x) = n_\text{out} \, \sigma_w^2
\operatorname{Var}(\partial L / \partial z)$, and a ReLU on the way back
passes the gradient only where $z > 0$, half of the time, which halves the
variance again. The backward signal keeps its scale if
$\sigma_w^2 = 2/n_\text{out}$ (ReLU) or $1/n_\text{out}$ (tanh).

Forwards wants $1/n_\text{in}$, backwards $1/n_\text{out}$. Glorot and
Bengio {cite}`glorot2010understanding`, for tanh-like units, took the
compromise between the two,

$$
\sigma_w^2 = \frac{2}{n_\text{in} + n_\text{out}}
\qquad \text{(Xavier/Glorot)},
$$

which is both when $n_\text{in} = n_\text{out}$. He et al. pointed out that
one of the two is enough: with $\sigma_w^2 = 2/n_\text{in}$, the backward
factor of layer $l$ is $n_\text{out}/n_\text{in}$, and over a stack of
layers these ratios cancel each other, leaving the ratio of the first and
last widths, whatever the depth {cite}`he2015delving`. Nothing grows or
shrinks exponentially.

| rule | $\operatorname{Var}(w)$ | derived for | keeps |
|---|---|---|---|
| LeCun | $1/n_\text{in}$ | linear, tanh | forward |
| Xavier/Glorot | $2/(n_\text{in} + n_\text{out})$ | linear, tanh | forward and backward, as a compromise |
| He/Kaiming | $2/n_\text{in}$ | ReLU | forward (backward up to a constant) |

## Write them, then import them

Both rules are one line of NumPy once we know the fans. A `Linear` weight
has the shape `(out_features, in_features)`, as in PyTorch, so $n_\text{out}$
comes first:
""")

code(r"""
def xavier_normal(shape, rng, dtype=np.float32):
    # Glorot & Bengio: N(0, 2 / (fan_in + fan_out)), for a Linear weight.
    fan_out, fan_in = shape
    std = np.sqrt(2 / (fan_in + fan_out))
    return (rng.standard_normal(shape) * std).astype(dtype)


def he_normal(shape, rng, dtype=np.float32):
    # He et al.: N(0, 2 / fan_in), for a Linear weight feeding a ReLU.
    fan_out, fan_in = shape
    std = np.sqrt(2 / fan_in)
    return (rng.standard_normal(shape) * std).astype(dtype)
""")

md(r"""
The same seed must give the same numbers as `nnlib.init`, and a layer
must accept our function as its `init=`:
""")

code(r"""
for ours, theirs in [(xavier_normal, init.xavier_normal),
                     (he_normal, init.he_normal)]:
    a = ours((256, 784), np.random.default_rng(SEED))
    b = theirs((256, 784), np.random.default_rng(SEED))
    assert np.array_equal(a, b)
    print(f"{ours.__name__:14} std {a.std():.4f}  equal to nnlib's: True")

ours = layers.Linear(784, 256, init=he_normal, rng=np.random.default_rng(1))
theirs = layers.Linear(784, 256, init="he", rng=np.random.default_rng(1))
assert np.array_equal(ours.weight.data, theirs.weight.data)
print("fans of a Conv2d weight (32, 16, 5, 5):", init.fans((32, 16, 5, 5)))
""")

md(r"""
`nnlib.init` computes the fans for convolution weights too: a weight of
shape (out, in, kH, kW) has $n_\text{in} = \text{in} \cdot kH \cdot kW$
inputs per output, which is the length of the sum each output is
([chapter 4](04_cnn_batchnorm.ipynb)).

## A deep network at its first step

Now the experiment of the seed, made visible. The network has ten linear
layers: 784 inputs, nine hidden layers of 256 units with a ReLU after
each, and 10 outputs. With $n_\text{in} = n_\text{out} = 256$ in the
middle, each hidden layer should multiply the standard deviation of the
signal by $\sqrt{\tfrac{1}{2} \cdot 256 \, \sigma_w^2}$: by 11.3 for
$\mathcal{N}(0, 1)$, by 0.11 for $\mathcal{N}(0, 0.01^2)$, by 1 for He.
""")

code(r"""
SIZES = (784,) + (256,) * 9 + (10,)


def deep_mlp(scheme, activation="relu"):
    # The chapter's network: 10 Linear layers, seeded identically each time.
    return models.mlp(SIZES, init=scheme, activation=activation,
                      rng=np.random.default_rng(SEED))


print(deep_mlp("he"))
""")

md(r"""
The probe runs the network one layer at a time, keeping the output of
every activation (ReLU or tanh), $h^{(1)}, \dots, h^{(9)}$, each of shape
$(1000, 256)$. Then it computes the cross-entropy of the outputs against
the true labels and runs backward, layer by layer, keeping the gradient
that arrives at each activation's output, $\partial L / \partial
h^{(l)}$. That gradient is what layer $l$'s weights and everything below
them learn from.
""")

code(r"""
def probe(model, X, y):
    # Activations h(l) and gradients dL/dh(l) of a Sequential, per layer.
    activation_types = (layers.ReLU, layers.Tanh)
    activations, h = [], X
    for layer in model:
        h = layer.forward(h)
        if isinstance(layer, activation_types):
            activations.append(h)
    loss_fn = losses.CrossEntropyLoss()
    loss = loss_fn.forward(h, y)
    gradients, g = [], loss_fn.backward()      # g = dL/dlogits, (N, 10)
    for layer in reversed(model.layers):
        if isinstance(layer, activation_types):
            gradients.append(g)                # dL/d(this layer's output)
        g = layer.backward(g)
    return {"loss": loss, "activations": activations,
            "gradients": gradients[::-1]}


relu_probes = {name: probe(deep_mlp(scheme), X_probe, y_probe)
               for name, scheme in SCHEMES.items()}
""")

md(r"""
The standard deviation of the activations, layer by layer, on a log
scale (equal steps up are equal factors):
""")

code(r"""
def stds(arrays):
    return [float(a.std()) for a in arrays]


plots.layer_stats(
    {name: stds(p["activations"]) for name, p in relu_probes.items()},
    title="Activations of a 10-layer ReLU network, before training")
""")

md(r"""
This is the seed's "vanishing/exploding", in numbers. Under
$\mathcal{N}(0, 1)$ the signal grows by a factor of about 11 per layer,
$11.3^8 \approx 3 \times 10^8$ from the first hidden layer to the last;
under $\mathcal{N}(0, 0.01^2)$ it shrinks by the same factor. The seed's
$\mathcal{U}(-0.1, 0.1)$ and Xavier lose a little at every layer, which
adds up to more than an order of magnitude. Only He keeps the signal
where it started.

The gradients, on their way back from the loss to the first layer, tell
the same story in reverse (read this plot from right to left):
""")

code(r"""
plots.layer_stats(
    {name: stds(p["gradients"]) for name, p in relu_probes.items()},
    title="Gradients dL/dh, before training (backprop runs right to left)",
    ylabel="std of dL/dh")
""")

md(r"""
Under $\mathcal{N}(0, 1)$ the gradient *explodes* on its way down: the
first layer receives gradients hundreds of millions of times larger than
the last. Under $\mathcal{N}(0, 0.01^2)$ it *vanishes*: the first layer
gets essentially nothing to learn from. Under He the gradient reaching
every layer has the same size.

Does the derivation predict these slopes? A table, from the same probes:
the factor per layer predicted by $\sqrt{\tfrac{1}{2} \cdot 256 \,
\sigma_w^2}$, and the one measured, as the geometric mean of the ratios
from layer 1 to layer 9, forwards for the activations and backwards for
the gradients:
""")

code(r"""
def factor_per_layer(values):
    # Geometric mean of the ratios between consecutive layers.
    return (values[-1] / values[0]) ** (1 / (len(values) - 1))


print(f"{'scheme':12} {'predicted':>9}  {'activations':>11}  "
      f"{'gradients':>9}  {'loss':>9}")
for name, p in relu_probes.items():
    predicted = np.sqrt(0.5 * 256 * weight_variance(name, 256, 256))
    forward = factor_per_layer(stds(p["activations"]))
    backward = 1 / factor_per_layer(stds(p["gradients"]))
    print(f"{name:12} {predicted:9.3f}  {forward:11.3f}  {backward:9.3f}  "
          f"{p['loss']:9.4g}")
    assert abs(forward / predicted - 1) < 0.1
    assert abs(backward / predicted - 1) < 0.1
""")

md(r"""
Within a few percent, at every scale, forwards and backwards. The loss
column is the cross-entropy at the start. An untrained network should
give every class about the same probability, a loss of $\ln 10 \approx
2.30$. With $\mathcal{N}(0, 1)$ the logits are as huge as the last
activations, the softmax is certain of one class, and when it is wrong, as
it is for about nine images in ten, the loss is of the size of the
logits. Training starts from an astronomical loss.

### The histograms

The standard deviation is one number per layer. Histograms show the whole
distribution. Here are the positive activations (the ReLU sets about half
of them to exactly zero, which would be one tall bar) of every other layer,
Xavier in the top row and He below, on the same axis:
""")

code(r"""
def positive(a):
    return a[a > 0]


shown = {}
for name in ("Xavier", "He"):
    for i in range(0, 9, 2):                    # layers 1, 3, 5, 7, 9
        shown[f"{name}, layer {i + 1}"] = positive(
            relu_probes[name]["activations"][i])
plots.activation_histograms(shown, xlim=(0, 4), max_cols=5,
                            title="Positive ReLU activations, before training")
""")

md(r"""
Under He the distribution has the same shape and width at every depth.
Under Xavier it is squeezed towards zero, layer after layer: each ReLU
halves $\mathbb{E}[h^2]$, and Xavier, with $\sigma_w^2 = 1/256$ in the
middle layers, does not double it back.

### Dead units? Not yet

A ReLU unit that outputs 0 for every image of a batch is *dead* on that
batch: it passes no signal forward and no gradient back.
`plots.dead_relu_fraction` counts them per layer:
""")

code(r"""
dead_at_start = {name: plots.dead_relu_fraction(p["activations"])
                 for name, p in relu_probes.items()}
print("dead units per layer (%), He:",
      [f"{100 * f:.1f}" for f in dead_at_start["He"]])
same = [np.array_equal(dead_at_start[name], dead_at_start["He"])
        for name in ("N(0, 1)", "N(0, 0.01²)", "Xavier")]
print("the same under N(0, 1), N(0, 0.01²) and Xavier:", all(same))
assert all(same)
""")

md(r"""
Some units are dead from the start, more of them in the upper layers,
and they are the *same* units under three
schemes whose scales differ by a factor of 100 each. That is no
coincidence. These three draw the same standard normal numbers from the
same seed and multiply them by different constants, and a ReLU network
with zero biases is *positively homogeneous*: $\max(0, c z) = c \max(0,
z)$ for $c > 0$, so scaling the weights of a layer by $c$ scales
everything after it by $c$ and changes no sign. Which units fire does not
depend on the scale at all. (Neither does the class the untrained network
predicts.) The scale decides how *large* the signals and gradients are,
and that is what decides whether training works. (The dead units come
from the depth: each layer makes the hidden representations of different
images more alike, so a unit that is negative for one image tends to be
negative for all of them. Below we count again after training.)

## ReLU against tanh

Xavier was derived for tanh, He for ReLU. The same probe, with tanh after
every hidden layer:
""")

code(r"""
tanh_probes = {name: probe(deep_mlp(scheme, "tanh"), X_probe, y_probe)
               for name, scheme in SCHEMES.items()}
plots.layer_stats(
    {name: stds(p["activations"]) for name, p in tanh_probes.items()},
    title="Activations of a 10-layer tanh network, before training")
""")

md(r"""
Nothing explodes: tanh cannot output more than 1. But look at *how* the
$\mathcal{N}(0, 1)$ network stays near 1: its units sit at $\pm 1$. The
histograms show it, $\mathcal{N}(0, 1)$ on top, $\mathcal{N}(0, 0.01^2)$ in
the middle and Xavier at the bottom:
""")

code(r"""
shown = {}
for name in ("N(0, 1)", "N(0, 0.01²)", "Xavier"):
    for i in range(0, 9, 2):
        shown[f"{name}\nlayer {i + 1}"] = tanh_probes[name]["activations"][i]
plots.activation_histograms(shown, xlim=(-1, 1), max_cols=5,
                            title="tanh activations, before training")
""")

md(r"""
Two failures and a success. With $\mathcal{N}(0, 1)$ the
pre-activations are in the tens, the tanh units are *saturated*: each is
stuck at $-1$ or $+1$, a sign and nothing more, and its slope $1 - \tanh^2
z$ is nearly zero, so almost no gradient gets through it. With
$\mathcal{N}(0, 0.01^2)$ the signal collapses onto 0 (and in the linear
regime around 0, tanh is a linear layer). Under Xavier the distribution
stays spread, slowly narrowing: the derivation assumed $\tanh z \approx
z$, but tanh is a little flatter than the identity, so each layer loses a
little (exercise 4 finds the gain that compensates).

A table of both activations side by side: the standard deviation in the
last hidden layer, and for tanh the share of saturated values,
$|h| > 0.99$:
""")

code(r"""
print(f"{'scheme':12} {'ReLU std h(9)':>13}  {'tanh std h(9)':>13}  "
      f"{'tanh saturated':>14}")
for name in SCHEMES:
    relu_last = relu_probes[name]["activations"][-1]
    tanh_acts = tanh_probes[name]["activations"]
    saturated = np.mean([np.mean(np.abs(h) > 0.99) for h in tanh_acts])
    print(f"{name:12} {relu_last.std():13.3g}  {tanh_acts[-1].std():13.3g}"
          f"  {saturated:14.1%}")
""")

md(r"""
Each activation has its rule. Under ReLU, Xavier is too small by a factor
of 2 in variance at every layer, and the signal fades; He is right. Under
tanh, Xavier works, and so does He: twice as large, its signal settles at
a higher level, without saturating many units. The seed's
$\mathcal{U}(-0.1, 0.1)$ is close to Xavier for these widths ($0.1^2/3 =
0.0033$ against $2/512 = 0.0039$ in the middle layers), so it behaves like
it: a reasonable choice for this network by luck, not by design; for
layers of 4,096 units it would be far too large.

## Explore the scale

The widget below is a 10-layer network of width 256 whose weights are
drawn from $\mathcal{N}(0, g^2/n_\text{in})$. The gain $g$ scales them:
$g = 1$ is LeCun's rule, $g = \sqrt{2}$ is He. Move the slider and choose
the activation to see how the spread of the activations changes with
depth, beside the two reference gains.
""")

code(r"""
explorer = explore.init_scale_explorer(
    X_probe[:500], rng=np.random.default_rng(SEED), depth=10, width=256)
explorer
""")

md(r"""
On the book's web page the widget is a picture taken when the notebook
ran, at gain 1 with ReLU; moving the slider needs a running Python kernel.
The same network at four gains, for both activations:
""")

code(r"""
gains = {"0.5": 0.5, "1": 1.0, "√2": np.sqrt(2), "2": 2.0}
with plots.style():
    fig, axes = plots.subplots(1, 2, figsize=(9, 3.6), sharey=True)
    for ax, activation in zip(axes[0], ("relu", "tanh")):
        for name, gain in gains.items():
            spread = stds(explorer.forward(gain, activation))
            ax.plot(range(1, len(spread) + 1), spread, marker="o", ms=4,
                    label=f"gain {name}")
        plots.log_y(ax)
        ax.set_title(f"{activation}: weights N(0, gain² / fan_in)")
        ax.set_xlabel("layer")
    axes[0, 0].set_ylabel("std of activations")
    axes[0, 1].legend()
fig
""", "hide-input")

md(r"""
With ReLU only gain $\sqrt{2}$ is flat: every other gain is a straight
line on the log scale, up or down, and its slope is the factor per layer,
$g/\sqrt{2}$. With tanh the picture is gentler. Large gains saturate at
once and then stay near 1 (the histograms above showed what that means);
small gains decay towards zero, slowly for gain 1 and fast for gain 0.5.
A deeper network makes every line longer and every mistake bigger.

## Training from five starting points

Pictures of the first step are a prediction. The test is to train. We
train the same 10-layer ReLU network from each of the five starting
points, with everything else equal: the same seed for the weights (so the
three normal schemes start from the same numbers, rescaled), the same
order of batches, SGD with momentum 0.9, learning rate 0.01 and batches of
64 as in [chapter 2](02_mlp_by_hand.ipynb), for 2 epochs. (A 10-layer
network of width 256 costs about twice as much per epoch as chapter 2's
784-256-64-10 network; 2 epochs keep this chapter to a couple of minutes
and show both how each run starts and where it gets to.)

All five runs share one live chart. If the loss becomes NaN or infinite,
`fit` stops that run, says so, and returns what it has.
""")

code(r"""
NUM_EPOCHS = 2
histories, trained = {}, {}
with live.LiveBoard("10-layer ReLU network, five initialisations") as board:
    for name, scheme in SCHEMES.items():
        model = deep_mlp(scheme)
        optimizer = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        histories[name] = train.fit(
            model, losses.CrossEntropyLoss(), optimizer, (X_tr, y_tr),
            (X_val, y_val), num_epochs=NUM_EPOCHS, batch_size=64,
            rng=np.random.default_rng(SEED), callbacks=[board.run(name)])
        trained[name] = model
""", "nbval-ignore-output")

md(r"""
How each run ended: its first loss, how many steps it took until the
training loss, averaged over 50 steps, first fell below 0.5, and its
accuracy on the validation set at the end.
""")

code(r"""
def steps_to_loss(history, target=0.5, window=50):
    # First step at which the mean loss of the last `window` steps is
    # below target; None if that never happens.
    step_loss = np.asarray(history.step_loss)
    if len(step_loss) < window:
        return None
    running = np.convolve(step_loss, np.ones(window) / window, "valid")
    below = np.flatnonzero(running < target)
    return int(below[0]) + window if below.size else None


print(f"{'scheme':12} {'ended':>9}  {'first loss':>10}  "
      f"{'steps to 0.5':>12}  {'val accuracy':>12}")
reached, val_acc = {}, {}
for name, h in histories.items():
    reached[name] = steps_to_loss(h)
    _, val_acc[name] = train.evaluate(trained[name], X_val, y_val)
    print(f"{name:12} {h.stop_reason:>9}  {h.step_loss[0]:10.4g}  "
          f"{reached[name] or 'never':>12}  {val_acc[name]:12.2%}")

print("\nN(0, 1):", histories["N(0, 1)"].message)
print(f"share of the most common digit, 1, in the validation set: "
      f"{np.mean(y_val == 1):.2%}")
learned = [name for name in SCHEMES if reached[name]]
print("reached a loss of 0.5:", ", ".join(learned))
print("fastest start:", min(learned, key=reached.get))
spread = max(val_acc[n] for n in learned) - min(val_acc[n] for n in learned)
print(f"their validation accuracies differ by at most {spread:.2%}")
""")

md(r"""
Read the table row by row.

- **$\mathcal{N}(0, 1)$** did not survive its second step. Its first loss
  is astronomical, the gradients in the low layers were larger still (we
  measured them above), and one step of SGD threw the weights so far that
  the next forward pass overflowed float32 into infinity and NaN: the
  warnings above the chart are NumPy noticing. The model keeps the weights
  of its last finite step, and they predict nothing.
- **$\mathcal{N}(0, 0.01^2)$** never left chance: its accuracy is the
  share of the most common digit. Its gradients are $10^{-8}$ times too
  small in the low layers. Only the biases of the last layer learn, and
  what they can learn is how frequent each class is.
- **$\mathcal{U}(-0.1, 0.1)$, Xavier and He** all learn, and after two
  epochs they are close together. The differences are at the start (the
  "steps to 0.5" column and the first few hundred steps of the chart):
  there the signal and the gradients of the too-small schemes are an
  order of magnitude short, and the first updates must grow the weights
  before learning proper begins.

So at ten layers the seed's uniform and Xavier get away with it. A factor
of 20 between the first and last layer is something SGD repairs in its
first few hundred steps; a factor of $10^8$ in either direction is not.
But every layer multiplies the factor again. He et al. trained a
30-layer network with Xavier initialisation and report that it did not
learn at all, where theirs did {cite}`he2015delving`. We can check that.

## Thirty layers

The same network with 29 hidden layers of 256 units instead of 9. Under
Xavier each hidden layer multiplies the signal by $1/\sqrt{2}$, so from
the first hidden layer to the last by $2^{-28/2} \approx 6 \times
10^{-5}$, forwards and backwards. The probe first:
""")

code(r"""
DEEP_SIZES = (784,) + (256,) * 29 + (10,)


def deeper_mlp(scheme):
    return models.mlp(DEEP_SIZES, init=scheme,
                      rng=np.random.default_rng(SEED))


deep_probes = {name: probe(deeper_mlp(name.lower()), X_probe, y_probe)
               for name in ("Xavier", "He")}
curves = {}
for name, p in deep_probes.items():
    curves[f"{name}, activations"] = stds(p["activations"])
    curves[f"{name}, gradients dL/dh"] = stds(p["gradients"])
plots.layer_stats(curves, ylabel="standard deviation",
                  title="A 30-layer ReLU network, before training")
""")

md(r"""
Under He, activations and gradients stay level through all 29 hidden
layers. Under Xavier the activations fade towards the top and the
gradients fade towards the bottom, each by the predicted four orders of
magnitude. Now train both, one epoch each, same batches:
""")

code(r"""
with live.LiveBoard("30-layer ReLU network: Xavier against He") as board:
    for name in ("Xavier", "He"):
        model = deeper_mlp(name.lower())
        optimizer = optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        deep_name = f"{name}, 30 layers"
        histories[deep_name] = train.fit(
            model, losses.CrossEntropyLoss(), optimizer, (X_tr, y_tr),
            (X_val, y_val), num_epochs=1, batch_size=64,
            rng=np.random.default_rng(SEED),
            callbacks=[board.run(deep_name)])
        trained[deep_name] = model
""", "nbval-ignore-output")

code(r"""
for name in ("Xavier, 30 layers", "He, 30 layers"):
    h = histories[name]
    last_loss = np.mean(h.step_loss[-50:])
    print(f"{name:18} {h.stop_reason}, mean loss of the last 50 steps "
          f"{last_loss:.3f}, validation accuracy {h.val_acc[-1]:.2%}")
assert histories["Xavier, 30 layers"].val_acc[-1] < 0.2
assert histories["He, 30 layers"].val_acc[-1] > 0.5
""")

md(r"""
He et al.'s observation, reproduced on MNIST. With Xavier the 30-layer
network sits at the chance loss, $\ln 10 \approx 2.30$, for the whole
epoch: the first layers get no gradient, the last layers get no signal,
and nothing moves. (The seed's $\mathcal{U}(-0.1, 0.1)$ shrinks faster
still and does no better.) With He it learns. It learns less well than the
10-layer network, and its loss jumps about: a plain stack of 30 layers
has other problems besides its first step, which batch normalisation
([chapter 4](04_cnn_batchnorm.ipynb)) and residual connections address.
But it starts, and no amount of training would have started the other.

### Dead units after training

At the start, the scale did not change which units fire. After training,
it can: the size of the first updates depends on it. The probe again, on
the trained 10-layer networks (all but $\mathcal{N}(0, 1)$, whose weights
are useless):
""")

code(r"""
dead_after = {name: plots.dead_relu_fraction(
                  probe(trained[name], X_probe, y_probe)["activations"])
              for name in SCHEMES if name != "N(0, 1)"}
plots.plot_dead_relu_fraction(
    dead_after, title="Units dead on 1,000 training images, after training")
""")

md(r"""
(Text to be written after the run.)

## The test set, once

The decisions are made; now the test set, touched once, for every model
trained in this chapter:
""")

code(r"""
print(f"{'scheme':18} {'validation':>10}  {'test':>7}")
test_acc = {}
for name, model in trained.items():
    _, val = train.evaluate(model, X_val, y_val)
    _, test_acc[name] = train.evaluate(model, X_test, y_test)
    print(f"{name:18} {val:10.2%}  {test_acc[name]:7.2%}")

he_pred = train.predict(trained["He"], X_test).argmax(axis=1)
print("\nHe, 10 layers: predictions per class",
      np.bincount(he_pred, minlength=10))
print("He, 10 layers: checksum",
      int(np.sum(he_pred * np.arange(len(he_pred)) % 9973)))
assert histories["N(0, 1)"].stop_reason == "nan"
assert test_acc["N(0, 0.01²)"] < 0.2
assert min(test_acc[n] for n in ("U(±0.1)", "Xavier", "He")) >= 0.95
assert test_acc["He, 30 layers"] > 0.5 > test_acc["Xavier, 30 layers"]
""")

md(r"""
None of these networks is good for MNIST: a two-layer network does as well
in [chapter 2](02_mlp_by_hand.ipynb), because depth brings nothing here
but more to get wrong. That was the point of the experiment. With the
wrong scale, depth turns a small error per layer into a network that
cannot learn; with the right one, a deep network at least starts.
""")

md(r"""
## Summary

- The weights must be random, or the units of a layer stay identical
  forever (symmetry). The biases can start at zero.
- For a layer $Z = X W^\top$ with independent weights of variance
  $\sigma_w^2$: $\operatorname{Var}(z) = n_\text{in} \, \sigma_w^2 \,
  \mathbb{E}[x^2]$, and backwards $\operatorname{Var}(\partial L/\partial
  x) = n_\text{out} \, \sigma_w^2 \operatorname{Var}(\partial L/\partial
  z)$. A ReLU halves both. We checked both on real digits to a few
  percent.
- Over $L$ layers these factors multiply: anything but 1 grows or shrinks
  exponentially with depth. $\mathcal{N}(0, 1)$ grows about 11-fold per
  layer of width 256; $\mathcal{N}(0, 0.01^2)$ shrinks about 9-fold.
- He ($2/n_\text{in}$) keeps the variance for ReLU {cite}`he2015delving`;
  Xavier/Glorot ($2/(n_\text{in} + n_\text{out})$) for tanh and linear
  units {cite}`glorot2010understanding`; LeCun ($1/n_\text{in}$) is the
  forward-only version for tanh. Under ReLU, Xavier fades by $\sqrt{2}$ per
  layer.
- tanh hides an explosion as saturation: units stuck at $\pm 1$ and
  gradients that cannot pass.
- A ReLU network without biases is positively homogeneous: the scale of
  the weights does not change which units fire at the start, only how
  large everything is.
- Trained on the same batches, the 10-layer network stopped on NaN from
  $\mathcal{N}(0, 1)$ and stayed at chance from $\mathcal{N}(0,
  0.01^2)$. From the seed's $\mathcal{U}(-0.1, 0.1)$, Xavier and He it
  learned, to about the same accuracy: at ten layers, SGD repairs a
  modest error of scale in its first steps. At thirty layers it does not:
  Xavier stayed at chance for a whole epoch, He learned, as He et al.
  found {cite}`he2015delving`.

`nnlib`'s layers use He by default (`init="he"`). In
[chapter 4](04_cnn_batchnorm.ipynb), batch normalisation makes networks
much less sensitive to all of this, by measuring and fixing the scale of
every layer as it trains.

## Exercises

1. **The uniform bounds.** $\mathcal{U}(-a, a)$ has variance $a^2/3$.
   Derive the bound $a$ of Xavier's uniform form and of He's, and check
   both against `init.xavier_uniform` and `init.he_uniform` on a weight of
   shape (256, 784).
""")

md(r"""
```{admonition} Solution
:class: dropdown
The density of $\mathcal{U}(-a, a)$ is $1/(2a)$, so its variance is
$\int_{-a}^{a} w^2 \, \frac{dw}{2a} = \frac{a^2}{3}$. Setting $a^2/3$
equal to the target variance: Xavier, $a^2/3 = 2/(n_\text{in} +
n_\text{out})$ gives $a = \sqrt{6 / (n_\text{in} + n_\text{out})}$, the
bound in Glorot and Bengio's paper; He, $a^2/3 = 2/n_\text{in}$ gives $a =
\sqrt{6 / n_\text{in}}$.
~~~python
rng = np.random.default_rng(0)
W = init.xavier_uniform((256, 784), rng)
print(np.abs(W).max(), np.sqrt(6 / (784 + 256)))     # just below the bound
print(W.var(), 2 / (784 + 256))
W = init.he_uniform((256, 784), rng)
print(np.abs(W).max(), np.sqrt(6 / 784), W.var(), 2 / 784)
~~~
The largest weight is just below $a$, and the variances agree to about a
percent. Uniform and normal with the same variance behave alike in deep
networks: the argument only used the variance.
```
""")

md(r"""
2. **BatchNorm makes the scale irrelevant (a preview of chapter 4).**
   `models.mlp(SIZES, init="normal", batchnorm=True, rng=...)` puts a
   `BatchNorm1d` between every hidden `Linear` and its ReLU. Probe it with
   $\mathcal{N}(0, 1)$ and with $\mathcal{N}(0, 0.01^2)$ weights, and plot
   the activations' standard deviations with `plots.layer_stats`. What do
   you see, and why?
""")

md(r"""
```{admonition} Solution
:class: dropdown
~~~python
bn = {name: probe(models.mlp(SIZES, init=scheme, batchnorm=True,
                             rng=np.random.default_rng(SEED)),
                  X_probe, y_probe)
      for name, scheme in [("N(0, 1)", "normal"),
                           ("N(0, 0.01²)", small_normal)]}
plots.layer_stats({n: stds(p["activations"]) for n, p in bn.items()})
~~~
Both lines are flat and on top of each other, at about 0.58 at every
layer. BatchNorm (in training mode) subtracts the batch mean of every unit
and divides by its batch standard deviation, so whatever scale the
weights give $z$, the ReLU receives inputs of mean 0 and variance 1, and
outputs a standard deviation of $\sqrt{1/2 - 1/(2\pi)} \approx 0.58$. The
scale of the weights no longer reaches the next layer. (It still matters
for training: the gradient of a layer followed by BatchNorm is inversely
proportional to its weights' scale, so large weights learn slowly.) With
BatchNorm, the $\mathcal{N}(0, 1)$ network trains without NaN; chapter 4
explains the mechanism {cite}`ioffe2015batch`.
```
""")

md(r"""
3. **Why biases start at zero.** (a) Would random biases, say
   $\mathcal{N}(0, 1)$, break the symmetry of the constant-weight network
   from the start of the chapter? (b) Why are zero biases nevertheless the
   usual choice, when the weights are random? (c) Some people start ReLU
   biases at a small positive value such as 0.01. What are they after?
""")

md(r"""
```{admonition} Solution
:class: dropdown
(a) In principle, yes. With equal weights $c$ and different biases, unit
$j$ computes $c \sum_i x_i + b_j$, so the units fire for different images,
get different gradients $\partial L/\partial w_{ji} = \sum_n
\delta_{nj} x_{ni}$ (the ReLU masks inside $\delta_{nj}$ differ) and
drift apart. But at the start every unit sees the image only through one
number, its total ink $\sum_i x_i$, and the units must learn all their
differences from there. Random weights give each unit its own view of the
image from the first step.

(b) The variance argument: a bias adds $\operatorname{Var}(b)$ to
$\operatorname{Var}(z)$, a term that does not depend on the input. Random
biases add noise that carries no information about the image, and their
size is not scaled by the fan-in, so in wide layers the rule would have to
account for them too. Zero is neutral: it keeps $z$ symmetric around 0
(which the factor $\tfrac{1}{2}$ for ReLU assumed), and the weights already
break the symmetry. Biases then learn what they need, quickly, since
their gradient is simply $\sum_n \partial L / \partial z_{nj}$.

(c) To keep units alive: a small positive bias makes every ReLU fire a
little more often at the start, so fewer are dead and more pass gradient.
With He initialisation and normalised inputs it makes little difference;
it matters more with unnormalised inputs or very deep networks.
```
""")

md(r"""
4. **The gain for tanh.** Under Xavier, and under LeCun's rule (gain 1),
   the tanh network's activations keep shrinking with depth. With
   `explorer.forward(gain, "tanh")` (or the widget), try the gains 1, 1.2,
   1.4, 5/3 and 2. What does the standard deviation do over the ten
   layers? PyTorch recommends the gain 5/3 for tanh
   (`torch.nn.init.calculate_gain("tanh")`). Why is a gain above 1 needed,
   although tanh has slope 1 at 0?
""")

md(r"""
```{admonition} Solution
:class: dropdown
~~~python
for gain in [1.0, 1.2, 1.4, 5 / 3, 2.0]:
    s = stds(explorer.forward(gain, "tanh"))
    print(f"gain {gain:.2f}:", np.round(s, 3))
~~~
With gain 1 the standard deviation decays at every layer, more and more
slowly but without end. With any gain above 1 it settles after a few
layers at a level that grows with the gain (roughly 0.65 for 5/3). The
slope of tanh is 1 only at 0: for an input of useful size,
$|\tanh z| < |z|$, so a layer with gain 1 always loses a little. Near 0
the loss vanishes, so for gain 1 the only level the variance can settle
at is 0; a gain $g > 1$ amplifies small signals by $g$ and creates a
level where the gain and tanh's flattening balance. $5/3$ is a rule of
thumb for a spread large enough to use the curve of tanh and small enough
to saturate few units.
```
""")

md(r"""
5. **LeCun initialisation for SELU.** The SELU activation,
   $\operatorname{selu}(z) = \lambda z$ for $z > 0$ and $\lambda \alpha
   (e^z - 1)$ otherwise, with $\lambda \approx 1.0507$ and $\alpha \approx
   1.6733$, was designed so that with weights of variance $1/n_\text{in}$
   (LeCun) the activations of a deep network keep mean 0 and variance 1 by
   themselves. Write `lecun_normal(shape, rng, dtype)` as an `nnlib`
   initialiser and a `SELU` layer (a `layers.Module` with `forward` and
   `backward`), put SELU in place of ReLU in the 10-layer network, and
   probe it. Does the variance stay at 1? What happens with He instead?
""")

md(r"""
```{admonition} Solution
:class: dropdown
~~~python
def lecun_normal(shape, rng, dtype=np.float32):
    fan_in, _ = init.fans(shape)
    return (rng.standard_normal(shape) / np.sqrt(fan_in)).astype(dtype)


class SELU(layers.Module):
    scale, alpha = 1.0507009873554805, 1.6732632423543772

    def forward(self, x):
        self.x = x
        neg = self.alpha * np.expm1(np.minimum(x, 0))
        return (self.scale * np.where(x > 0, x, neg)).astype(x.dtype)

    def backward(self, dout):
        slope = np.where(self.x > 0, 1.0,
                         self.alpha * np.exp(np.minimum(self.x, 0)))
        return (dout * self.scale * slope).astype(dout.dtype)


def selu_mlp(scheme):
    rng = np.random.default_rng(SEED)
    stack = []
    for n_in, n_out in zip(SIZES[:-2], SIZES[1:-1]):
        stack += [layers.Linear(n_in, n_out, init=scheme, rng=rng), SELU()]
    stack.append(layers.Linear(SIZES[-2], SIZES[-1], init=scheme, rng=rng))
    return layers.Sequential(*stack)

for name, scheme in [("LeCun", lecun_normal), ("He", "he")]:
    h = X_probe
    for layer in selu_mlp(scheme):
        h = layer.forward(h)
        if isinstance(layer, SELU):
            print(name, f"mean {h.mean():+.2f} std {h.std():.2f}")
~~~
(The probe function of the chapter only looks for ReLU and Tanh layers,
hence the loop.) With LeCun weights the activations stay near mean 0 and
standard deviation 1 at every layer: SELU's two constants were chosen so
that (0, 1) is a stable fixed point of the map from one layer's mean and
variance to the next, given $\operatorname{Var}(w) = 1/n_\text{in}$.
With He weights, twice the variance, SELU has no half to throw away, so
the standard deviation grows layer after layer, slower than exponentially
(the negative side of SELU is bounded by $-\lambda\alpha \approx -1.76$),
and the network drifts away from the fixed point the constants were made
for. Each activation needs its own rule.
```
""")

nb = new_notebook(cells=cells)
nb.metadata["kernelspec"] = {"display_name": "Python 3",
                             "language": "python", "name": "python3"}
nb.metadata["language_info"] = {"name": "python"}
out = sys.argv[1] if len(sys.argv) > 1 else \
    "/work/main/notebooks/03_initialisation.ipynb"
nbformat.write(nb, out)
print(len(cells), "cells written")
