"""Ray Data on a local cluster: explain_dataset's results equal the single-process ones, row
for row and in order, over several blocks and actors."""

import numpy as np
import pytest

import lrpc

ray = pytest.importorskip("ray", reason="ray is not installed (the README's test command installs it)")

from lrpc.ray import explain_dataset  # noqa: E402
from conftest import cli  # noqa: E402


@pytest.fixture(scope="module")
def cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    ctx = ray.data.DataContext.get_current()
    ctx.execution_options.preserve_order = True
    ctx.enable_progress_bars = False
    yield
    ray.shutdown()


def rows(ds, *columns):
    out = {c: [] for c in columns}
    for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
        for c in columns:
            out[c].append(batch[c])
    return {c: np.concatenate(v) for c, v in out.items()}


@pytest.mark.parametrize("actors,blocks", [(1, 3), (2, 5)])
def test_explain_dataset_equals_one_process(cluster, shapes_model, shapes_data, actors, blocks):
    x, y = shapes_data[0][:22], shapes_data[1][:22]
    ds = ray.data.from_items([{"image": x[k], "id": k, "label": int(y[k])} for k in range(len(x))], override_num_blocks=blocks)
    out = explain_dataset(ds, shapes_model, method="epsilon-gamma-box", low=-2.0, high=2.0, batch_size=4, concurrency=actors)
    got = rows(out, "id", "image", "relevance", "logits", "target")
    assert list(got["id"]) == list(range(len(x)))
    assert np.array_equal(got["image"], x)
    one = lrpc.Explainer(shapes_model, method="epsilon-gamma-box", low=-2.0, high=2.0, batch=4, threads=1)
    want = one.explain(x)
    assert got["relevance"].shape == x.shape
    assert np.array_equal(got["relevance"], want.relevance)
    assert np.array_equal(got["logits"], want.logits)
    assert np.array_equal(got["target"], want.targets)


def test_targets_from_a_column_and_an_artifact_model(cluster, tmp_path, shapes_model, shapes_data):
    x, y = shapes_data[0][:10], shapes_data[1][:10].astype(np.int64)
    art = tmp_path / "shapes.lrpx"
    cli("compile", shapes_model, "--method", "epsilon", "--batch", "3", "--threads", "1", "-o", art)
    ds = ray.data.from_items([{"data": x[k], "label": int(y[k])} for k in range(len(x))], override_num_blocks=2)
    out = explain_dataset(ds, art, column="data", batch_size=3, concurrency=2, target_column="label")
    got = rows(out, "relevance", "target")
    assert np.array_equal(got["target"], y)
    want = lrpc.Explainer(art, threads=1).explain(x, target=y)
    assert np.array_equal(got["relevance"], want.relevance)


def test_refusals(cluster, tmp_path, shapes_model, shapes_data):
    ds = ray.data.from_items([{"image": shapes_data[0][0]}])
    with pytest.raises(lrpc.LrpcError, match="epsilon-minus"):
        explain_dataset(ds, shapes_model, method="epsilon-minus")
    with pytest.raises(lrpc.LrpcError, match="target or target_column"):
        explain_dataset(ds, shapes_model, target=1, target_column="label")
    art = tmp_path / "a.lrpx"
    cli("compile", shapes_model, "-o", art)
    with pytest.raises(lrpc.LrpcError, match="gamma: the artifact fixed this"):
        explain_dataset(ds, art, gamma=0.5)
    with pytest.raises(Exception, match="no column 'pixels'"):
        explain_dataset(ds, shapes_model, column="pixels").materialize()


@pytest.mark.parametrize("perturb", ["uniform", "mean"])
def test_evaluate_dataset_equals_one_process(cluster, shapes_model, shapes_data, perturb):
    from lrpc.ray import evaluate_dataset

    x, y = shapes_data[0][:30], shapes_data[1][:30]
    ds = ray.data.from_items([{"image": x[k], "label": int(y[k])} for k in range(len(x))], override_num_blocks=3)
    study = dict(methods=["epsilon-plus", "random"], patch=4, steps=8, target="label", correct_only=True, seed=11, perturb=perturb)
    got = evaluate_dataset(ds, shapes_model, label_column="label", batch_size=7, concurrency=2, explain_batch=4, **study)
    want = lrpc.evaluate(shapes_model, x, y, batch=4, threads=1, **study)
    assert got["n"] == want["n"] and got["steps"] == want["steps"] == 8
    for g, w in zip(got["methods"], want["methods"]):
        assert g["method"] == w["method"]
        if perturb == "uniform":
            assert g["aopc"] == w["aopc"] and g["se"] == w["se"]
            assert np.array_equal(g["curve"], w["curve"]) and np.array_equal(g["curve_se"], w["curve_se"])
            assert np.array_equal(g["accuracy"], w["accuracy"])
        else:  # the channel means are summed in another order
            np.testing.assert_allclose(g["curve"], w["curve"], rtol=1e-5, atol=1e-6)
