"""The Python surface against the command line: the same numbers bitwise for the same threads,
batch and method; the argument forms; errors as LrpcError with the command line's messages."""

import threading

import numpy as np
import pytest

import lrpc
from conftest import FIXTURES, cli


def cli_relevance(tmp_path, model, x, *args):
    """lrpc explain on `x` (saved as .npy): the relevance it writes."""
    inp, out = tmp_path / "x.npy", tmp_path / "r.npy"
    np.save(inp, x)
    cli("explain", model, "--input", inp, "--output", out, *args)
    return np.load(out)


@pytest.mark.parametrize(
    "method,params,flags",
    [
        ("epsilon-gamma-box", {"low": -2.0, "high": 2.0}, ["--low", "-2", "--high", "2"]),
        ("epsilon-plus-flat", {}, []),
        ("epsilon-alpha2-beta1", {"rules": {"*conv*": "epsilon"}}, ["--rule", "*conv*=epsilon"]),
        ("gradient-x-input", {}, []),
    ],
)
def test_relevance_equals_the_command_line_bitwise(tmp_path, shapes_model, shapes_batch, method, params, flags):
    e = lrpc.Explainer(shapes_model, method=method, batch=5, threads=2, **params)
    out = e.explain(shapes_batch)
    want = cli_relevance(tmp_path, shapes_model, shapes_batch, "--method", method, "--threads", "2", *flags)
    assert out.relevance.shape == shapes_batch.shape
    assert out.relevance.dtype == np.float32
    assert np.array_equal(out.relevance, want)
    assert out.logits.shape == (5, 3)
    assert out.targets.dtype == np.int64
    assert np.array_equal(out.targets, out.logits.argmax(axis=1))


def test_a_fixed_target_equals_the_command_line(tmp_path, shapes_model, shapes_batch):
    e = lrpc.Explainer(shapes_model, method="epsilon", batch=5, threads=2)
    out = e.explain(shapes_batch, target=1)
    want = cli_relevance(tmp_path, shapes_model, shapes_batch, "--method", "epsilon", "--threads", "2", "--target", "1")
    assert np.array_equal(out.relevance, want)
    assert list(out.targets) == [1] * 5


def test_one_sample_without_the_batch_axis(shapes_model, shapes_batch):
    e = lrpc.Explainer(shapes_model, method="epsilon-plus", threads=1)
    one = e.explain(shapes_batch[2])
    assert one.relevance.shape == shapes_batch.shape[1:]
    assert one.logits.shape == (1, 3)
    many = e.explain(shapes_batch)
    # batch 1 compiled: sample 2 of the batch is run alone too.
    assert np.array_equal(many.relevance[2], one.relevance)


def test_any_number_of_samples_runs_in_batches(shapes_model, shapes_data):
    x = shapes_data[0][:7]
    e3 = lrpc.Explainer(shapes_model, method="epsilon", batch=3, threads=1)
    e1 = lrpc.Explainer(shapes_model, method="epsilon", batch=1, threads=1)
    assert e3.batch == 3 and e1.batch == 1
    a, b = e3.explain(x), e1.explain(x)
    assert a.relevance.shape == x.shape
    np.testing.assert_allclose(a.relevance, b.relevance, rtol=1e-4, atol=1e-5 * np.abs(b.relevance).max())
    assert np.array_equal(a.targets, b.targets)


def test_targets_per_sample(shapes_model, shapes_batch):
    e = lrpc.Explainer(shapes_model, method="epsilon", batch=5, threads=1)
    t = [0, 1, 2, 1, 0]
    out = e.explain(shapes_batch, target=t)
    assert list(out.targets) == t
    for k, c in enumerate(t):
        alone = e.explain(shapes_batch, target=c)
        assert np.array_equal(out.relevance[k], alone.relevance[k])
    # numpy targets too
    assert list(e.explain(shapes_batch, target=np.array(t)).targets) == t


def test_forward_gives_the_explained_logits(shapes_model, shapes_batch):
    e = lrpc.Explainer(shapes_model, method="epsilon", batch=2, threads=1)
    logits = e.forward(shapes_batch)
    assert logits.shape == (5, 3)
    assert np.array_equal(logits, e.explain(shapes_batch).logits)


def test_inputs_are_converted_once_and_contiguous_ones_read_in_place(shapes_model, shapes_batch):
    e = lrpc.Explainer(shapes_model, method="epsilon", batch=5, threads=1)
    assert lrpc._array(shapes_batch, np.float32, "input") is shapes_batch
    strided = np.asfortranarray(shapes_batch.astype(np.float64))
    assert not strided.flags.c_contiguous
    assert np.array_equal(e.explain(strided).relevance, e.explain(shapes_batch).relevance)
    # nested lists are arrays too
    assert e.explain(shapes_batch[0].tolist()).relevance.shape == (3, 32, 32)


def test_properties(shapes_model):
    e = lrpc.Explainer(shapes_model, method="epsilon-gamma-box", batch=4)
    assert e.method == "epsilon-gamma-box"
    assert e.input_shape == (4, 3, 32, 32)
    assert e.classes == 3
    assert e.input_dtype == np.float32
    assert "epsilon-gamma-box" in repr(e)
    assert "epsilon-plus" in lrpc.methods()


def test_heatmap_matches_the_colour_map(shapes_model, shapes_batch):
    r = lrpc.Explainer(shapes_model, method="epsilon").explain(shapes_batch[0]).relevance
    h = lrpc.heatmap(r)
    assert h.dtype == np.uint8 and h.shape == (224, 224, 3)
    small = lrpc.heatmap(r, min_size=1)
    assert small.shape == (32, 32, 3)
    s = r.sum(axis=0)
    hot, cold = np.unravel_index(s.argmax(), s.shape), np.unravel_index(s.argmin(), s.shape)
    # bwr: the largest positive value is red, the most negative blue
    assert small[hot][0] > small[hot][2]
    if s.min() < 0:
        assert small[cold][2] > small[cold][0]
    gray = lrpc.heatmap(r, cmap="gray", min_size=1)
    assert (gray[..., 0] == gray[..., 1]).all()
    with pytest.raises(lrpc.LrpcError, match="colour map|cmap|unknown"):
        lrpc.heatmap(r, cmap="viridis-ish")


def test_artifacts_load_and_fix_their_method(tmp_path, shapes_model, shapes_batch):
    art = tmp_path / "shapes.lrpx"
    cli("compile", shapes_model, "--method", "epsilon-plus", "--batch", "5", "--threads", "2", "-o", art)
    a = lrpc.Explainer(art, threads=2)
    assert a.method == "epsilon-plus" and a.batch == 5
    b = lrpc.Explainer(shapes_model, method="epsilon-plus", batch=5, threads=2)
    assert np.array_equal(a.explain(shapes_batch).relevance, b.explain(shapes_batch).relevance)
    with pytest.raises(lrpc.LrpcError, match="method: the artifact fixed this"):
        lrpc.Explainer(art, method="epsilon")
    with pytest.raises(lrpc.LrpcError, match="batch: the artifact fixed this"):
        lrpc.Explainer(art, batch=2)
    # save() round trip
    again = tmp_path / "again.lrpx"
    b.save(again)
    assert np.array_equal(lrpc.Explainer(again, threads=2).explain(shapes_batch).relevance, b.explain(shapes_batch).relevance)


def test_threads_explain_in_parallel_on_one_explainer(shapes_model, shapes_data):
    e = lrpc.Explainer(shapes_model, method="epsilon-plus", batch=4, threads=1)
    chunks = [shapes_data[0][k * 8 : (k + 1) * 8] for k in range(4)]
    want = [e.explain(c).relevance for c in chunks]
    got = [None] * 4

    def work(k):
        got[k] = e.explain(chunks[k]).relevance

    ts = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    for w, g in zip(want, got):
        assert np.array_equal(w, g)


def test_token_ids_give_relevance_per_token_and_per_embedding(tmp_path):
    model = FIXTURES / "text_cnn" / "model.onnx"
    ids = np.load(FIXTURES / "text_cnn" / "input.npy")
    e = lrpc.Explainer(model, method="epsilon", batch=ids.shape[0], threads=2)
    assert e.input_dtype == np.int64
    out = e.explain(ids)
    assert out.relevance.shape == ids.shape
    assert out.embedding is not None and out.embedding.shape[:2] == ids.shape
    np.testing.assert_allclose(out.relevance, out.embedding.sum(axis=-1), rtol=1e-5, atol=1e-6)
    inp, tok, emb = tmp_path / "ids.npy", tmp_path / "t.npy", tmp_path / "e.npy"
    np.save(inp, ids)
    cli("explain", model, "--input", inp, "--method", "epsilon", "--threads", "2", "--output", tok, "--output-embedding", emb)
    assert np.array_equal(out.relevance, np.load(tok))
    assert np.array_equal(out.embedding, np.load(emb))
    with pytest.raises(lrpc.LrpcError, match="token ids"):
        e.explain(ids.astype(np.float32) + 0.5)
    with pytest.raises(lrpc.LrpcError, match="non-negative"):
        e.explain(-ids - 1)


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda m: lrpc.Explainer("/no/such/model.onnx"), "/no/such/model.onnx: No such file"),
        (lambda m: lrpc.Explainer(m, method="epsilon-minus"), "epsilon-minus"),
        (lambda m: lrpc.Explainer(m, rules={"conv*": "bogus"}), "bogus"),
        (lambda m: lrpc.Explainer(m, alpha=0.5), "alpha: must be at least 1"),
        (lambda m: lrpc.Explainer(m, batch=0), "batch must be a positive integer"),
        (lambda m: lrpc.Explainer(m, threads=0), "threads must be a positive integer"),
        (lambda m: lrpc.Explainer(m).explain(np.zeros((2, 3, 31, 32), np.float32)), r"has shape \(2, 3, 31, 32\)"),
        (lambda m: lrpc.Explainer(m).explain(np.array([["a"] * 32] * 32)), "give a numeric array"),
        (lambda m: lrpc.Explainer(m).explain(np.full((3, 32, 32), np.nan, np.float32)), "NaN|finite"),
        (lambda m: lrpc.Explainer(m).explain(np.zeros((3, 32, 32), np.float32), target=3), "outside the model's 3 classes"),
        (lambda m: lrpc.Explainer(m).explain(np.zeros((2, 3, 32, 32), np.float32), target=[0]), "1 targets for 2 samples"),
        (lambda m: lrpc.Explainer(m).explain(np.zeros((3, 32, 32), np.float32), target="cat"), "neither a class index"),
    ],
)
def test_errors_are_lrpc_errors_with_one_line(shapes_model, make, match):
    with pytest.raises(lrpc.LrpcError, match=match) as info:
        make(shapes_model)
    assert "\n" not in str(info.value)


def test_a_malformed_model_is_an_lrpc_error(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"\x08\x07garbage that is no protobuf")
    with pytest.raises(lrpc.LrpcError, match="bad.onnx"):
        lrpc.Explainer(bad)
    art = tmp_path / "bad.lrpx"
    art.write_bytes(b"LRPX but truncated")
    with pytest.raises(lrpc.LrpcError, match="bad.lrpx"):
        lrpc.Explainer(art)


def test_explainers_do_not_pickle(shapes_model):
    import pickle

    with pytest.raises(lrpc.LrpcError, match="cannot be pickled"):
        pickle.dumps(lrpc.Explainer(shapes_model))


def test_evaluate_equals_the_command_line(tmp_path, shapes_model, shapes_data):
    import json

    x, y = shapes_data[0][:24], shapes_data[1][:24]
    r = lrpc.evaluate(
        shapes_model, x, y, methods=["epsilon-plus", "sensitivity", "random"], patch=4, steps=12,
        target="label", seed=3, threads=2,
    )
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", y.astype(np.int64))
    out = cli(
        "evaluate", shapes_model, "--data", tmp_path / "x.npy", "--labels", tmp_path / "y.npy",
        "--methods", "epsilon-plus,sensitivity,random", "--patch", "4", "--steps", "12",
        "--target", "label", "--seed", "3", "--threads", "2", "--json", "--quiet",
    ).stdout
    want = json.loads(out)
    assert r["n"] == want["n"] == 24 and r["steps"] == 12
    for got, m in zip(r["methods"], want["methods"]):
        assert got["method"] == m["method"]
        assert got["aopc"] == m["aopc"] and got["se"] == m["se"] and got["rank"] == m["rank"]
        assert np.array_equal(got["curve"], np.asarray(m["curve"]))
        assert np.array_equal(got["accuracy"], np.asarray(m["accuracy"]))
    with pytest.raises(lrpc.LrpcError, match="neither morf nor lerf"):
        lrpc.evaluate(shapes_model, x, order="sideways")
    with pytest.raises(lrpc.LrpcError, match="unknown parameter 'epsilom'"):
        lrpc.evaluate(shapes_model, x, epsilom=1e-3)


def test_regions_context_use_and_shares(shapes_model, shapes_batch):
    r = lrpc.Explainer(shapes_model, method="epsilon-plus").explain(shapes_batch[0]).relevance
    plane = r.sum(axis=0).astype(np.float64)
    c = lrpc.context_use(r, (4, 6, 20, 30))
    inside = plane[6:30, 4:20].sum()
    assert c["inside_pixels"] == 16 * 24
    np.testing.assert_allclose(c["inside"]["signed"], inside, rtol=1e-6)
    np.testing.assert_allclose(c["context_use"]["signed"], (plane.sum() - inside) / inside, rtol=1e-6)
    mask = np.zeros((32, 32), np.uint8)
    mask[:16] = 1
    mask[16:, :8] = 2
    s = lrpc.region_shares(r, mask)
    assert sorted(s) == [1, 2]
    np.testing.assert_allclose(s[1]["signed"], plane[:16].sum() / plane.sum(), rtol=1e-6)
    with pytest.raises(lrpc.LrpcError, match="box"):
        lrpc.context_use(r, (10, 0, 5, 4))
    with pytest.raises(lrpc.LrpcError, match="mask has shape"):
        lrpc.region_shares(r, np.zeros((8, 8), np.uint8))
