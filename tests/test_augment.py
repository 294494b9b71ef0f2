"""Batch augmentation: exact shifts, rotations as np.rot90, random draws."""
import numpy as np
import pytest

from nnlib.augment import random_shift_rotate, shift_rotate


def images(n=6, c=1, h=28, w=28, dtype=np.float32, seed=0):
    """Random images whose border is 0 (the background), as MNIST's are."""
    X = np.random.default_rng(seed).random((n, c, h, w)).astype(dtype)
    X[..., :3, :] = X[..., -3:, :] = X[..., :, :3] = X[..., :, -3:] = 0
    return X


def roll_zero_fill(image, dy, dx, fill=0.0):
    """np.roll by (dy, dx), with what wrapped around replaced by fill."""
    out = np.roll(image, (dy, dx), axis=(-2, -1))
    h, w = image.shape[-2:]
    rows, cols = np.arange(h)[:, None], np.arange(w)[None, :]
    wrapped = ((rows - dy < 0) | (rows - dy >= h)
               | (cols - dx < 0) | (cols - dx >= w))
    out[..., wrapped] = fill
    return out


def test_shape_and_dtype_are_kept():
    rng = np.random.default_rng(0)
    for dtype in (np.float32, np.float64):
        X = images(5, c=2, h=20, w=24, dtype=dtype)
        out = random_shift_rotate(X, rng)
        assert out.shape == X.shape and out.dtype == dtype


def test_no_shift_no_rotation_is_the_identity():
    X = images() - 0.42          # a background that is not 0
    out = shift_rotate(X, degrees=np.zeros(len(X)), shifts=np.zeros((6, 2)))
    np.testing.assert_array_equal(out, X)
    out = random_shift_rotate(X, np.random.default_rng(1), max_shift=0,
                              max_degrees=0)
    np.testing.assert_array_equal(out, X)
    assert out is not X


@pytest.mark.parametrize("dy, dx", [(1, 0), (0, -2), (2, 2), (-2, 1),
                                    (5, -7)])
def test_a_shift_is_np_roll_with_the_background_filled_in(dy, dx):
    X = np.random.default_rng(2).random((3, 1, 28, 28)).astype(np.float32)
    out = shift_rotate(X, 0.0, [dy, dx], fill=0.0)
    np.testing.assert_array_equal(out, roll_zero_fill(X, dy, dx))
    # by default the fill is the batch's darkest value
    out = shift_rotate(X, 0.0, [dy, dx])
    np.testing.assert_array_equal(out, roll_zero_fill(X, dy, dx, X.min()))


def test_each_image_gets_its_own_shift():
    X = images(4)
    shifts = np.array([[0, 0], [1, 2], [-2, 0], [2, -1]])
    out = shift_rotate(X, np.zeros(4), shifts)
    for n, (dy, dx) in enumerate(shifts):
        np.testing.assert_array_equal(out[n], roll_zero_fill(X[n], dy, dx))


def test_quarter_turns_agree_with_rot90():
    X = images(3, c=2, h=10, w=10)
    for k in (1, 2, -1):
        out = shift_rotate(X, 90.0 * k, [0, 0])
        expected = np.rot90(X, k, axes=(2, 3))
        np.testing.assert_allclose(out, expected, atol=1e-5)


def test_a_small_rotation_turns_and_keeps_the_ink():
    X = np.zeros((1, 1, 28, 28), np.float32)
    X[0, 0, 4:24, 13:15] = 1.0                  # a vertical bar, a "1"
    out = shift_rotate(X, 10.0, [0, 0])[0, 0]
    # Bilinear interpolation spreads the ink, but keeps nearly all of it.
    assert abs(out.sum() - X.sum()) < 0.02 * X.sum()
    # Turned anticlockwise, the top of the bar moves left, the bottom right.
    cols = np.arange(28)
    top = (out[5] * cols).sum() / out[5].sum()
    bottom = (out[22] * cols).sum() / out[22].sum()
    assert top < 13.5 - 1 and bottom > 13.5 + 1


def test_random_draws_stay_within_the_limits():
    # With no rotation, every image must be one of the 5 x 5 shifts.
    X = images(40)
    out = random_shift_rotate(X, np.random.default_rng(3), max_shift=2,
                              max_degrees=0)
    seen = set()
    for n in range(len(X)):
        matches = [(dy, dx) for dy in range(-2, 3) for dx in range(-2, 3)
                   if np.array_equal(out[n], roll_zero_fill(X[n], dy, dx))]
        assert matches, f"image {n} is not a shift of at most 2 pixels"
        seen.update(matches)
    assert len(seen) > 10          # and the shifts do vary


def test_same_seed_same_result_different_seed_different_result():
    X = images(8)
    a = random_shift_rotate(X, np.random.default_rng(7), max_degrees=15)
    b = random_shift_rotate(X, np.random.default_rng(7), max_degrees=15)
    c = random_shift_rotate(X, np.random.default_rng(8), max_degrees=15)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_input_is_not_modified():
    X = images()
    before = X.copy()
    random_shift_rotate(X, np.random.default_rng(0))
    np.testing.assert_array_equal(X, before)


def test_works_as_fit_augment():
    from nnlib.layers import Flatten, Linear, Sequential
    from nnlib.losses import CrossEntropyLoss
    from nnlib.optim import SGD
    from nnlib.train import fit

    rng = np.random.default_rng(0)
    X, y = images(32, h=8, w=8), rng.integers(0, 3, 32)
    model = Sequential(Flatten(), Linear(64, 3, rng=rng))
    history = fit(model, CrossEntropyLoss(), SGD(model.parameters(), lr=0.1),
                  (X, y), num_epochs=2, batch_size=8, rng=rng,
                  augment=random_shift_rotate)
    assert history.stop_reason == "completed"


def test_errors_say_what_to_pass():
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\)"):
        random_shift_rotate(np.zeros((4, 784), np.float32), rng)
    with pytest.raises(TypeError, match="floating"):
        random_shift_rotate(np.zeros((4, 1, 28, 28), np.uint8), rng)
    with pytest.raises(TypeError, match="generator"):
        random_shift_rotate(images(2), 0)
    with pytest.raises(ValueError, match="max_shift"):
        random_shift_rotate(images(2), rng, max_shift=1.5)
    with pytest.raises(ValueError, match="max_degrees"):
        random_shift_rotate(images(2), rng, max_degrees=-5)
    with pytest.raises(ValueError, match=r"shifts \(3, 2\)"):
        shift_rotate(images(3), np.zeros(3), np.zeros((2, 2)))


# --- Elastic distortion, against loops written from the definitions --------
from nnlib.augment import displace, gaussian_matrix, random_elastic  # noqa: E402


def smooth_loop(field, sigma):
    """The field filtered with a Gaussian cut at 4 sigma, scaled to sum 1,
    with zeros beyond the edges: a double sum for every pixel."""
    radius = int(4 * sigma + 0.5)
    taps = [np.exp(-0.5 * (t / sigma) ** 2) for t in range(-radius, radius + 1)]
    total = sum(taps)
    h, w = field.shape
    out = np.zeros((h, w))
    for i in range(h):
        for j in range(w):
            for a in range(-radius, radius + 1):
                for b in range(-radius, radius + 1):
                    if 0 <= i - a < h and 0 <= j - b < w:
                        out[i, j] += (taps[a + radius] * taps[b + radius]
                                      / total ** 2 * field[i - a, j - b])
    return out


def displace_loop(image, dy, dx, fill):
    """Bilinear reading of one (H, W) image at (i + dy, j + dx), pixel by
    pixel, with fill outside the image."""
    h, w = image.shape

    def at(r, c):
        return image[r, c] if 0 <= r < h and 0 <= c < w else fill

    out = np.empty((h, w))
    for i in range(h):
        for j in range(w):
            r, c = i + dy[i, j], j + dx[i, j]
            r0, c0 = int(np.floor(r)), int(np.floor(c))
            a, b = r - r0, c - c0
            out[i, j] = ((1 - a) * (1 - b) * at(r0, c0)
                         + (1 - a) * b * at(r0, c0 + 1)
                         + a * (1 - b) * at(r0 + 1, c0)
                         + a * b * at(r0 + 1, c0 + 1))
    return out


def test_gaussian_matrix_is_the_loop_filter():
    field = np.random.default_rng(0).uniform(-1, 1, (12, 9))
    for sigma in (0.8, 2.0, 4.0):
        G_h, G_w = gaussian_matrix(12, sigma), gaussian_matrix(9, sigma)
        np.testing.assert_allclose(G_h @ field @ G_w.T,
                                   smooth_loop(field, sigma), atol=1e-12)


def test_gaussian_matrix_by_hand():
    # sigma 0.5: radius 2, taps exp(-2 t^2) for t = -2..2, scaled to sum 1
    taps = np.exp(-2.0 * np.arange(-2, 3) ** 2)
    taps /= taps.sum()
    G = gaussian_matrix(4, 0.5)
    np.testing.assert_allclose(G[0], [taps[2], taps[1], taps[0], 0.0])
    np.testing.assert_allclose(G[2], [taps[0], taps[1], taps[2], taps[3]])
    with pytest.raises(ValueError, match="sigma"):
        gaussian_matrix(4, 0.0)


def test_displace_is_the_loop_reference():
    rng = np.random.default_rng(3)
    X = images(3, c=2, h=10, w=11, dtype=np.float64) - 0.3
    dy, dx = rng.uniform(-4, 4, (2, 3, 10, 11))
    out = displace(X, dy, dx)
    for n in range(3):
        for k in range(2):
            np.testing.assert_allclose(
                out[n, k], displace_loop(X[n, k], dy[n], dx[n], X.min()),
                atol=1e-12)


def test_whole_pixel_displacement_is_a_shift():
    X = images()
    dy = np.full((6, 28, 28), -1.0)       # read a row up: content moves down
    dx = np.full((6, 28, 28), 2.0)
    np.testing.assert_array_equal(displace(X, dy, dx),
                                  shift_rotate(X, 0.0, (1, -2)))
    np.testing.assert_array_equal(displace(X, 0 * dy, 0 * dx), X)


def test_random_elastic_is_smooth_fields_then_displace():
    X = images(4)
    out = random_elastic(X, np.random.default_rng(5), alpha=8, sigma=3)
    rng = np.random.default_rng(5)
    fields = rng.uniform(-1, 1, (2, 4, 28, 28))
    dy = np.stack([8 * smooth_loop(f, 3) for f in fields[0]])
    dx = np.stack([8 * smooth_loop(f, 3) for f in fields[1]])
    expected = np.stack([displace_loop(X[n, 0], dy[n], dx[n], 0.0)
                         for n in range(4)])
    np.testing.assert_allclose(out[:, 0], expected, atol=1e-5)
    assert out.dtype == X.dtype
    # alpha 0 moves nothing
    np.testing.assert_array_equal(
        random_elastic(X, np.random.default_rng(1), alpha=0), X)
    with pytest.raises(ValueError, match="shape"):
        displace(X, np.zeros((4, 28, 28)), np.zeros((6, 28, 28)))


def test_shift_rotate_is_the_loop_reference():
    # the source point of every pixel from the definition, one at a time:
    # u = pixel - centre - shift, turned by -theta, plus the centre; then
    # the loop's bilinear reading there (odd and even sizes, two channels)
    rng = np.random.default_rng(11)
    X = images(3, c=2, h=9, w=8, dtype=np.float64)
    degrees = rng.uniform(-30, 30, 3)
    shifts = rng.integers(-2, 3, (3, 2))
    out = shift_rotate(X, degrees, shifts)
    cr, cc = 4.0, 3.5
    for n in range(3):
        t = np.deg2rad(degrees[n])
        dy, dx = np.empty((9, 8)), np.empty((9, 8))
        for i in range(9):
            for j in range(8):
                ur, uc = i - cr - shifts[n, 0], j - cc - shifts[n, 1]
                dy[i, j] = np.cos(t) * ur + np.sin(t) * uc + cr - i
                dx[i, j] = np.cos(t) * uc - np.sin(t) * ur + cc - j
        for k in range(2):
            np.testing.assert_allclose(
                out[n, k], displace_loop(X[n, k], dy, dx, X.min()),
                atol=1e-12)
